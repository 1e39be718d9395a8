import { describe, expect, it } from "vitest";
import { measureLedgerCalls } from "../bench/ledger-calls.js";

/**
 * Issue 12's round-trip budget, counted on the wire (a middleware on the DynamoDB client sees every
 * request the ledger sends): at most 4 ledger calls per model turn and per tool call, on a run
 * that saves at once and on one where a human approves the save first.
 */
describe("ledger round trips per step (counted on the wire)", () => {
  it.each([
    ["01-packaging-saved.json", "saved"],
    ["03-controls-needs-approval.json", "saved"],
  ])(
    "%s: every orchestrator step and every tool call makes at most 4 DynamoDB calls",
    async (file, outcome) => {
      // Act
      const f = await measureLedgerCalls("acme", file);

      // Assess: the run really went through its steps (the counter saw them), and none is over budget.
      expect(f.outcome).toBe(outcome);
      expect(f.perToolCall.length).toBeGreaterThanOrEqual(4);
      expect(f.steps.some((s) => s.label === "save")).toBe(true);
      for (const s of f.steps) {
        expect(s.calls, `${s.kind} ${s.label}: ${s.operations.join(", ")}`).toBeGreaterThan(0);
        expect(s.calls, `${s.kind} ${s.label}: ${s.operations.join(", ")}`).toBeLessThanOrEqual(4);
      }
      // The step's outcome is one write: a model turn stores its record once and updates the run once.
      const turns = f.steps.filter((s) => s.kind === "turn" && s.operations.includes("PutItem"));
      expect(turns.length).toBeGreaterThan(0);
      for (const t of turns) expect(t.operations.filter((o) => o === "UpdateItem")).toHaveLength(1);
    },
    120_000,
  );
});
