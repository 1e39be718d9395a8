/**
 * The name the model sees for a tool: the API accepts letters, digits, `_` and `-` only, so a
 * mounted tool `server.tool` travels as `server__tool` (the same rule as the SDK clients'
 * `wireToolName`). Every message the model reads names tools this way.
 */
export function toWireName(name: string): string {
  return name.replaceAll(".", "__");
}
