import { z } from "zod/v3";
import { BUILT_IN_TOOL_NAMES as CATALOGUE_TOOL_NAMES } from "../catalogue.js";

/** Tool names built into po-agent: a mounted tool never takes one of these (see `openToolsets`). */
export const BUILT_IN_TOOL_NAMES: readonly string[] = CATALOGUE_TOOL_NAMES;

/** How long one connect, list or call may take before it is given up. @default 10 s */
export const DEFAULT_MCP_TIMEOUT_MS = 10_000;

const ServerName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,23}$/, "1-24 lowercase letters, digits, _ or -, starting with a letter (the namespace)")
  .refine((n) => !BUILT_IN_TOOL_NAMES.includes(n), "must not be a built-in tool name");

/** What a mounted tool may do; a tool the server lists but the config does not declare is `dangerous`. */
export const McpToolDeclaration = z.object({ effect: z.enum(["read", "write", "dangerous"]) }).strict();

const common = {
  /** The namespace: the server's tool `lookup_vendor` is offered as `<name>.lookup_vendor`. */
  name: ServerName,
  /** Effects of the tools the customer expects, by the server's own tool name. */
  tools: z.record(z.string().regex(/^[A-Za-z0-9_./-]{1,128}$/, "an MCP tool name"), McpToolDeclaration).default({}),
  /** Connect, list and each call must answer within this many milliseconds. */
  timeoutMs: z.number().int().positive().max(600_000).default(DEFAULT_MCP_TIMEOUT_MS),
};

/** A local server started as a child process speaking MCP over stdin/stdout. */
export const StdioMcpServer = z
  .object({
    ...common,
    transport: z.literal("stdio"),
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    /** Added to the SDK's safe default environment (PATH, HOME...); never the whole parent environment. */
    env: z.record(z.string()).default({}),
    /** Local mode only: a deployed stack leaves this server out (a Lambda has no child process to offer). */
    localOnly: z.boolean().optional(),
  })
  .strict();

/** A remote server over Streamable HTTP; its credential comes from Secrets Manager, never the config. */
export const HttpMcpServer = z
  .object({
    ...common,
    transport: z.literal("http"),
    url: z.string().url(),
    /** Secret whose SecretString is sent in `authHeader` (prefixed `Bearer ` for Authorization). */
    authSecretArn: z.string().startsWith("arn:").optional(),
    /** @default "Authorization" */
    authHeader: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/)
      .default("Authorization"),
  })
  .strict();

export const McpServerConfig = z.discriminatedUnion("transport", [StdioMcpServer, HttpMcpServer]);
export type McpServerConfig = z.infer<typeof McpServerConfig>;

/** The `mcpServers` field of a customer config: names are namespaces, so they must be unique. */
export const McpServers = z
  .array(McpServerConfig)
  .default([])
  .superRefine((servers, ctx) => {
    const seen = new Set<string>();
    servers.forEach((s, i) => {
      if (seen.has(s.name)) {
        ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate MCP server name "${s.name}"` });
      }
      seen.add(s.name);
    });
  });
