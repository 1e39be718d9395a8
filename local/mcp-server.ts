/**
 * po-agent as an MCP server over stdio, backed by the whole local stack in this process:
 *
 *   npx po-agent mcp [--data-dir DIR] [--customers DIR]      (or: node --import tsx local/mcp-server.ts ...)
 *
 * stdout carries the protocol only: anything else the process would print goes to stderr.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { loadCustomers } from "../lambdas/shared/config/load.js";
import { createPoAgentMcpServer, type PoAgentBackend } from "../lambdas/shared/mcp/server.js";
import { LocalStack, type LocalStackOptions } from "./stack.js";

/** The MCP backend over a running LocalStack: the same decide() path as the email links and the CLI. */
export function localBackend(stack: LocalStack): PoAgentBackend {
  return {
    ledger: stack.ledger,
    customers: stack.opts.customers,
    decideDeps: (customer) => stack.deps(customer),
    // Durable: the answer comes once the run record exists, so a client that leaves at once loses nothing.
    submit: (customer, fileName, body) => stack.submitDurably(customer, fileName, body),
    traceEvents: async (runId) => stack.traces.read(runId),
  };
}

/** A po-agent MCP server for a LocalStack; the actor is `mcp:<client name from initialize>`. */
export function createLocalMcpServer(stack: LocalStack): McpServer {
  const holder: { server?: McpServer } = {};
  const server = createPoAgentMcpServer(localBackend(stack), {
    actor: () => `mcp:${holder.server?.server.getClientVersion()?.name ?? "unknown-client"}`,
  });
  holder.server = server;
  return server;
}

export interface McpStdioOptions extends Omit<LocalStackOptions, "customers"> {
  customersDir: string;
}

/** Starts the local stack and serves MCP on stdin/stdout until the client disconnects. */
export async function serveMcpStdio(opts: McpStdioOptions): Promise<{ stack: LocalStack; closed: Promise<void> }> {
  // Keep stdout for JSON-RPC: libraries that log to the console write to stderr instead.
  const toStderr = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(" ")}\n`);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  const stack = await LocalStack.start({
    ...opts,
    command: "mcp",
    parseInWorker: true,
    customers: loadCustomers(opts.customersDir),
    onEvent: (e) => {
      if (e.type === "warning") process.stderr.write(`po-agent mcp: warning: ${e.message}\n`);
      opts.onEvent?.(e);
    },
  });
  await stack.resumeRuns();
  const server = createLocalMcpServer(stack);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((done) => {
    transport.onclose = () => {
      void stack.close().finally(done);
    };
  });
  process.stdin.on("end", () => {
    void server.close();
  });
  await server.connect(transport);
  return { stack, closed };
}

/** `po-agent mcp` argument parsing: the CLI's global options. */
export function mcpOptions(argv: string[]): McpStdioOptions {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string" }, customers: { type: "string" } },
    strict: true,
  });
  return {
    dataDir: resolve(values["data-dir"] ?? ".po-agent"),
    customersDir: resolve(values.customers ?? "customers"),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  serveMcpStdio(mcpOptions(process.argv.slice(2)))
    .then(({ closed }) => closed)
    .then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`po-agent mcp: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
}
