import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { z } from "zod/v3";
import { SCHEMA_VERSION } from "../../lambdas/shared/constants.js";
import { LedgerSchemaError } from "../../lambdas/shared/errors.js";
import {
  ApprovalRecord,
  AuditRecord,
  OrderRecord,
  parseRecord,
  RECORD_VERSIONS,
  type RecordKind,
  RunRecord,
  ToolCallRecord,
  TurnRecord,
} from "../../lambdas/shared/ledger/records.js";

const fixture = (path: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/ledger/${path}`, import.meta.url), "utf8"));

/** Fixture file name → the schema and the record kind the ledger parses it as. */
const KINDS: [file: string, kind: RecordKind, schema: z.ZodType<unknown, z.ZodTypeDef, unknown>][] = [
  ["run", "run", RunRecord],
  ["turn", "turn", TurnRecord],
  ["tool-call", "tool call", ToolCallRecord],
  ["approval", "approval", ApprovalRecord],
  ["order", "order", OrderRecord],
  ["audit", "audit", AuditRecord],
];

/** Runs `fn` and returns the LedgerSchemaError it throws (failing the test if it throws nothing else). */
function schemaError(fn: () => unknown): LedgerSchemaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LedgerSchemaError);
    return err as LedgerSchemaError;
  }
  throw new Error("expected a LedgerSchemaError, nothing was thrown");
}

describe("parseRecord: version 1 records", () => {
  it("reads the current schema version (the fixtures are written for it)", () => {
    expect(SCHEMA_VERSION).toBe(1);
  });

  it.each(KINDS)("reads a v1 %s record, upgraded where its kind moved on", (file, kind, schema) => {
    // Prepare
    const item = fixture(`v1/${file}.json`) as Record<string, unknown>;

    // Act
    const record = parseRecord(schema, kind, item);

    // Assess: v1 turns and tool calls carry no delta (their counters went onto the run); v1 orders
    // were written after their object (they read as written); a v1 approval without a revision
    // anywhere stays without one; other kinds are still at version 1.
    const expected =
      kind === "order"
        ? { state: "written", ...item, schemaVersion: 2 }
        : kind === "turn" || kind === "tool call"
          ? { ...item, schemaVersion: 2, delta: {} }
          : kind === "approval"
            ? { ...item, schemaVersion: 2 }
            : item;
    expect(record).toEqual(expected);
  });

  it("reads a v1 order written before the claim state existed as written", () => {
    // Act
    const record = parseRecord(OrderRecord, "order", fixture("v1/order.json"));

    // Assess
    expect(record.state).toBe("written");
  });

  it("reads a v1 run written before the retries and compactions counters existed as zero", () => {
    const item = fixture("v1/run.json") as { counters: Record<string, unknown> };
    const { retries: _r, compactions: _c, estimatedTurns: _e, ...olderCounters } = item.counters;

    const record = parseRecord(RunRecord, "run", { ...item, counters: olderCounters });

    expect(record.counters).toMatchObject({ retries: 0, compactions: 0, estimatedTurns: 0, guardRejections: 0 });
  });
});

describe("parseRecord: a v1 approval's policy revision becomes a field", () => {
  const REV = "cedar-51c2bcf01d69b792";
  const v1 = fixture("v1/approval.json") as Record<string, unknown>;
  const inReason = { ...v1, reason: `${String(v1.reason)} (policy ${REV})` };

  it.each([
    ["kept from the field", { ...v1, policyRevision: REV }],
    ["recovered from the end of the reason (builds before the field)", inReason],
    ["taken from the field when field and reason disagree", { ...inReason, policyRevision: "cedar-0123456789abcdef" }],
  ] as [string, Record<string, unknown>][])("%s", (_label, item) => {
    // Act
    const record = parseRecord(ApprovalRecord, "approval", item);

    // Assess: the reason is left as written, for humans
    expect(record.schemaVersion).toBe(RECORD_VERSIONS.approval);
    expect(record.policyRevision).toBe("policyRevision" in item ? item.policyRevision : REV);
    expect(record.reason).toBe(item.reason);
  });

  it("does not read a revision out of a model escalation's reason (the model's own words)", () => {
    const record = parseRecord(ApprovalRecord, "approval", { ...inReason, rule: "model-escalation" });

    expect(record.policyRevision).toBeUndefined();
  });

  it("upgrades the decided copies a v1 run carries", () => {
    // Prepare
    const run = { ...(fixture("v1/run.json") as object), decided: [inReason] };

    // Act
    const record = parseRecord(RunRecord, "run", run);

    // Assess
    expect(record.decided?.[0]).toMatchObject({ schemaVersion: RECORD_VERSIONS.approval, policyRevision: REV });
  });
});

describe("parseRecord: unknown versions fail loudly", () => {
  it.each(KINDS)(
    "rejects a %s record from a newer version, naming the kind and both versions",
    (file, kind, schema) => {
      // Prepare: the v2 fixtures (a field added), one version past what this build reads
      const next = RECORD_VERSIONS[kind] + 1;
      const item = { ...(fixture(`v2/${file}.json`) as object), schemaVersion: next };

      // Act
      const err = schemaError(() => parseRecord(schema, kind, item));

      // Assess
      expect(err.message).toBe(
        `${kind} record has schemaVersion ${next}; this build reads version ${RECORD_VERSIONS[kind]}`,
      );
      expect(err.name).toBe("LedgerSchemaError");
    },
  );

  it("rejects a record without schemaVersion", () => {
    // Act
    const err = schemaError(() => parseRecord(RunRecord, "run", fixture("invalid/run-missing-version.json")));

    // Assess
    expect(err.message).toMatch(/^run record has schemaVersion undefined; this build reads version 1/);
  });

  it('rejects schemaVersion "1" written as a string', () => {
    // Act
    const err = schemaError(() => parseRecord(RunRecord, "run", fixture("invalid/run-version-as-string.json")));

    // Assess
    expect(err.message).toMatch(/^run record has schemaVersion "1"/);
  });

  it("rejects something that is not a record at all", () => {
    // Act
    const err = schemaError(() => parseRecord(TurnRecord, "turn", undefined));

    // Assess
    expect(err.message).toMatch(/^turn record has schemaVersion undefined/);
  });
});

describe("parseRecord: invalid shapes name the field", () => {
  it.each([
    ["run-counters-not-a-number", "run", RunRecord, "counters.modelCalls"],
    ["turn-unknown-disposition", "turn", TurnRecord, "dispositions.0.kind"],
    ["approval-unknown-status", "approval", ApprovalRecord, "status"],
    ["tool-call-missing-is-error", "tool call", ToolCallRecord, "isError"],
  ] as const)("%s → names %s … at %s", (file, kind, schema, field) => {
    // Prepare
    const item = fixture(`invalid/${file}.json`);

    // Act
    const err = schemaError(() => parseRecord(schema as z.ZodType<unknown, z.ZodTypeDef, unknown>, kind, item));

    // Assess
    expect(err.message.startsWith(`${kind} record is invalid at ${field}: `)).toBe(true);
  });
});
