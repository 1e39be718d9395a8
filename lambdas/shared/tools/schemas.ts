import { z } from "zod/v3";

/** Argument schemas several built-in tools share (light: zod only). */

/** A reference to one stored version of the run's PO: what every PO tool takes instead of a PO. */
export const Ref = {
  artifactId: z.string().regex(/^po_[0-9a-f]{16}$/),
  version: z.number().int().positive().max(9999),
};
export type RefArgs = { artifactId: string; version: number };

/** The arguments of a tool that takes one PO version. */
export const RefInput = z.object(Ref).strict();
