import { z } from "zod/v3";
import { type RunOf, toolSpec } from "../define.js";
import type * as Lib from "../lib/document.js";

export const spec = toolSpec({
  name: "read_document",
  lane: "document",
  effect: "read",
  reads: ["incoming"],
  description:
    "Raw text of the document, paged: no id gives the parts and page 1; then ids like document#p2, body#p1, a1#p1.",
  input: z
    .object({
      id: z
        .string()
        .regex(/^[a-z0-9]{1,12}(#p\d{1,4})?$/)
        .optional(),
    })
    .strict(),
});

/**
 * The raw text of this run's document, paged and bounded, with stable ids (`document#p1`, an email's
 * `body#p1`, `a2#p3`), so a model can work when no parser can: read, then draft_po (a human always
 * confirms a drafted PO).
 */
export const run: RunOf<typeof spec, typeof Lib> = async ({ id }, ctx, lib) => {
  const { PAGE_CHARS, rawParts } = lib;
  const bytes = await ctx.loadDocument();
  const name = ctx.document.key.split("/").pop() ?? ctx.document.key;
  const parts = await rawParts(bytes, name);
  const pagesOf = (p: { text: string }) => Math.max(1, Math.ceil(p.text.length / PAGE_CHARS));
  const index = parts.map((p) => ({ id: p.id, label: p.label, pages: pagesOf(p), chars: p.text.length }));
  const [partId, pageText] = (id ?? `${parts[0]?.id ?? "document"}#p1`).split("#p");
  const part = parts.find((p) => p.id === partId);
  const page = Number(pageText ?? "1");
  if (!part || page < 1 || page > pagesOf(part)) {
    return {
      content: `no page "${id}" in this document; parts: ${index.map((p) => `${p.id} (${p.pages} page(s))`).join(", ")}`,
      isError: true,
    };
  }
  return {
    content: JSON.stringify({
      id: `${part.id}#p${page}`,
      of: pagesOf(part),
      ...(id === undefined ? { parts: index } : {}),
      text: part.text.slice((page - 1) * PAGE_CHARS, page * PAGE_CHARS),
    }),
  };
};
