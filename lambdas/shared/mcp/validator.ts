import type { jsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/types.js";

/**
 * The JSON Schema validator po-agent gives the MCP SDK's Client and Server, which would otherwise each
 * build an Ajv instance with its formats per connection (and make every bundle that holds them load
 * ajv, ajv-formats and fast-uri at init). Nothing po-agent does reaches it: the SDK asks for a
 * validator only to check a tool's `structuredContent` against the `outputSchema` cached by
 * `Client.listTools()` (po-agent lists with its own loose reader, `tools/list` requests in client.ts,
 * so one malformed tool drops alone) and to check an elicitation answer (`Server.elicitInput`, never
 * called; no elicitation capability is declared). Should a change reach it, it fails with this reason
 * rather than validate nothing. The bundles replace ajv and ajv-formats with ajv-absent.ts.
 */
export const NO_SCHEMA_VALIDATION: jsonSchemaValidator = {
  getValidator() {
    throw new Error(
      "po-agent gives the MCP SDK no JSON Schema validator (lambdas/shared/mcp/validator.ts): nothing it does validates an outputSchema or an elicitation",
    );
  },
};
