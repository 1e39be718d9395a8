import { z } from "zod/v3";

type JsonSchema = Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A permissive zod schema for an MCP tool's JSON input schema. The guard needs one to reject
 * obviously wrong calls before they reach the customer's system: arguments must be an object,
 * required keys present, and primitive-typed properties of the right primitive type. Anything
 * richer (formats, patterns, combinators, $ref) is left to the server, which validates too.
 */
export function jsonSchemaToZod(schema: unknown): z.ZodType<Record<string, unknown>> {
  const s = isRecord(schema) ? schema : {};
  const properties = isRecord(s.properties) ? s.properties : {};
  const required = new Set(Array.isArray(s.required) ? s.required.filter((k) => typeof k === "string") : []);
  const shape: Record<string, z.ZodTypeAny> = {};
  for (const [key, prop] of Object.entries(properties)) {
    const value = valueSchema(prop, 1);
    shape[key] = required.has(key) ? value : value.optional();
  }
  // Required keys without a property schema still have to be present.
  for (const key of required) if (!(key in shape)) shape[key] = z.unknown().refine((v) => v !== undefined, "Required");
  const object = z.object(shape);
  return (s.additionalProperties === false ? object.strict() : object.passthrough()) as z.ZodType<
    Record<string, unknown>
  >;
}

function valueSchema(schema: unknown, depth: number): z.ZodTypeAny {
  if (!isRecord(schema)) return z.unknown();
  if (Array.isArray(schema.enum) && schema.enum.every((v) => typeof v === "string") && schema.enum.length > 0) {
    const [first, ...rest] = schema.enum as string[];
    return z.enum([first as string, ...rest]);
  }
  const type = schema.type;
  switch (type) {
    case "string":
      return z.string();
    case "integer":
      return z.number().int();
    case "number":
      return z.number();
    case "boolean":
      return z.boolean();
    case "null":
      return z.null();
    case "array":
      return z.array(depth < 4 ? valueSchema(schema.items, depth + 1) : z.unknown());
    case "object":
      return depth < 4 ? jsonSchemaToZod(schema) : z.record(z.unknown());
    default:
      // Unions of types, anyOf/oneOf, $ref, or no type at all: accept and let the server decide.
      return z.unknown();
  }
}

/** The JSON schema the model is shown: the server's own, forced to an object schema as Anthropic requires. */
export function modelInputSchema(schema: unknown): JsonSchema {
  const s = isRecord(schema) ? { ...schema } : {};
  if (s.type !== "object") return { type: "object", properties: {}, additionalProperties: true };
  // Drop the JSON Schema dialect marker; the rest is passed through as the server wrote it.
  delete s.$schema;
  return s;
}
