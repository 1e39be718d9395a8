import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DocumentError } from "../../lambdas/shared/errors.js";
import { NormalizedPo } from "../../lambdas/shared/po/model.js";
import { readDocument, readDocumentAll } from "../../lambdas/shared/po/parse.js";
import { mulberry32 } from "../support/prng.js";

const prng = mulberry32;

const SAMPLES = ["acme", "customer37"].flatMap((c) =>
  readdirSync(join("samples", c)).map((f) => ({
    name: `${c}/${f}`,
    bytes: new Uint8Array(readFileSync(join("samples", c, f))),
  })),
);
/** The real-world shapes (X12 batches, EDIFACT, Peppol, ERP CSV): several POs per file are fuzzed too. */
const SHAPES = readdirSync(join("test", "fixtures", "formats"))
  .filter((f) => !f.endsWith(".ts"))
  .map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(join("test", "fixtures", "formats", f))) }));
const SPECIAL = [..."<>{}[]\"',;|*~:\n\r\t\0", "\u00ff"].map((c) => c.charCodeAt(0) & 0xff);

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const at = (n: number) => Math.floor(rnd() * n);
  const b = new Uint8Array(src);
  switch (at(6)) {
    case 0: {
      // flip a few bytes to random values
      for (let i = 0, n = 1 + at(8); i < n; i++) b[at(b.length)] = at(256);
      return b;
    }
    case 1: // truncate
      return b.subarray(0, at(b.length));
    case 2: {
      // delete a range
      const s = at(b.length);
      const e = Math.min(b.length, s + 1 + at(64));
      return new Uint8Array([...b.subarray(0, s), ...b.subarray(e)]);
    }
    case 3: {
      // duplicate a range
      const s = at(b.length);
      const e = Math.min(b.length, s + 1 + at(200));
      return new Uint8Array([...b.subarray(0, e), ...b.subarray(s, e), ...b.subarray(e)]);
    }
    case 4: {
      // insert structural characters
      const s = at(b.length);
      const ins = Array.from({ length: 1 + at(6) }, () => SPECIAL[at(SPECIAL.length)] ?? 0);
      return new Uint8Array([...b.subarray(0, s), ...ins, ...b.subarray(s)]);
    }
    default: {
      // replace digits with other digits or letters (amounts, dates, counts)
      for (let i = 0; i < b.length; i++) {
        const c = b[i] ?? 0;
        if (c >= 0x30 && c <= 0x39 && rnd() < 0.05) b[i] = rnd() < 0.5 ? 0x30 + at(10) : 0x41 + at(26);
      }
      return b;
    }
  }
}

describe("fuzzing the parsers with mutated samples", () => {
  const CASES = 300;
  const SEED = 20261125;

  it(`${CASES} mutations: every outcome is a schema-valid PO or a DocumentError`, async () => {
    // Prepare
    const rnd = prng(SEED);
    const outcomes = { parsed: 0, refused: 0 };
    for (let i = 0; i < CASES; i++) {
      const sample = SAMPLES[i % SAMPLES.length];
      if (!sample) throw new Error("no samples");
      const bytes = mutate(sample.bytes, rnd);
      // Act
      try {
        const { po } = await readDocument(bytes, sample.name);
        // Assess: what parses is a complete PO
        expect(NormalizedPo.safeParse(po).success, `case ${i} (${sample.name})`).toBe(true);
        outcomes.parsed++;
      } catch (err) {
        // Assess: anything else is a DocumentError with a reason, never a crash
        if (!(err instanceof DocumentError)) {
          throw new Error(`case ${i} (${sample.name}, seed ${SEED}) escaped as ${String(err)}`, { cause: err });
        }
        expect(err.message.length, `case ${i}`).toBeGreaterThan(10);
        outcomes.refused++;
      }
    }
    // Both kinds of outcome occur, so the mutations neither all break nor all miss the parsers.
    expect(outcomes.parsed).toBeGreaterThan(10);
    expect(outcomes.refused).toBeGreaterThan(10);
  }, 60_000);

  it(`${CASES} mutations of the real-world shapes: every PO of a file is schema-valid, or a DocumentError`, async () => {
    // Prepare
    const rnd = prng(SEED + 13);
    const outcomes = { parsed: 0, refused: 0 };
    for (let i = 0; i < CASES; i++) {
      const sample = SHAPES[i % SHAPES.length];
      if (!sample) throw new Error("no fixtures");
      const bytes = mutate(sample.bytes, rnd);
      // Act
      try {
        const all = await readDocumentAll(bytes, sample.name);
        // Assess
        expect(all.length, `case ${i} (${sample.name})`).toBeGreaterThan(0);
        for (const { po } of all) expect(NormalizedPo.safeParse(po).success, `case ${i} (${sample.name})`).toBe(true);
        outcomes.parsed++;
      } catch (err) {
        if (!(err instanceof DocumentError)) {
          throw new Error(`case ${i} (${sample.name}, seed ${SEED + 13}) escaped as ${String(err)}`, { cause: err });
        }
        expect(err.message.length, `case ${i}`).toBeGreaterThan(10);
        outcomes.refused++;
      }
    }
    expect(outcomes.parsed).toBeGreaterThan(10);
    expect(outcomes.refused).toBeGreaterThan(10);
  }, 60_000);
});
