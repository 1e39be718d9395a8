/**
 * What the Lambda bundles hold in place of `ajv` and `ajv-formats` (the esbuild alias in
 * lib/po-agent-function.ts): the MCP SDK imports them for its default JSON Schema validator, which
 * po-agent never builds (it passes NO_SCHEMA_VALIDATION, validator.ts). Building one anyway fails
 * here, loudly, instead of validating nothing.
 */
export default function ajvAbsent(): never {
  throw new Error(
    "ajv is not bundled: give the MCP SDK's Client or Server NO_SCHEMA_VALIDATION (lambdas/shared/mcp/validator.ts)",
  );
}
