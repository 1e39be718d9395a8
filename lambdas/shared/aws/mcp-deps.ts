import type { AgentDeps } from "../agent/deps.js";
import type { McpToolset } from "../mcp/client.js";
import { customer, secretValue } from "./runtime.js";

/**
 * The customer's MCP servers for one invocation: connected on first use, closed when the
 * invocation ends (a frozen container must not hold a child process or a stale session).
 * `only` limits the connection to the servers a call needs (the McpTool Lambda: one).
 */
export async function withMcp<T>(
  only: readonly string[] | undefined,
  fn: (mcp: AgentDeps["mcp"]) => Promise<T>,
): Promise<T> {
  if (customer.mcpServers.length === 0) return fn(undefined);
  let opened: Promise<McpToolset> | undefined;
  try {
    return await fn(() => {
      // The MCP client SDK (with ajv) is imported only by a function whose customer mounts servers.
      opened ??= import("../mcp/client.js").then(({ openToolsets }) =>
        openToolsets(customer, {
          secretValue,
          // A Lambda has no child processes to offer: stdio servers are a local-mode feature.
          skip: (s) =>
            s.transport === "stdio" ? "stdio MCP servers run only locally; serve it over Streamable HTTP" : undefined,
          ...(only ? { only } : {}),
        }),
      );
      return opened;
    });
  } finally {
    await opened?.then((t) => t.close()).catch(() => {});
  }
}
