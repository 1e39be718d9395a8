import { describe, expect, it } from "vitest";
import { renderThread } from "../../lambdas/shared/context/passages.js";
import { prepareContext } from "../../lambdas/shared/context/prepare.js";
import { createFetchContextTool, FETCH_CONTEXT_TOOL } from "../../lambdas/shared/context/tool.js";
import { PreparedContext } from "../../lambdas/shared/context/types.js";
import { estimateTokens } from "../../lambdas/shared/model/tokens.js";
import type { ToolContext } from "../../lambdas/shared/tools/types.js";
import { generateThread } from "../bench/thread-generator.js";

// One generated thread of about 30k tokens, shared by the tests (generation is deterministic).
const thread = generateThread({ seed: 42, targetTokens: 30_000 });
const BUDGET = 3_000;
const prepared = prepareContext(thread.messages, { budgetTokens: BUDGET });

describe("prepareContext", () => {
  it("stays within the token budget, far below the whole thread", () => {
    // Assess
    expect(prepared.threadTokens).toBe(estimateTokens(renderThread(thread.messages)));
    expect(prepared.sentTokens).toBe(estimateTokens(prepared.text));
    expect(prepared.sentTokens).toBeLessThanOrEqual(BUDGET);
    expect(prepared.sentTokens).toBeLessThan(prepared.threadTokens / 5);
  });

  it("a smaller budget sends fewer verbatim passages", () => {
    // Act
    const small = prepareContext(thread.messages, { budgetTokens: 1_500 });

    // Assess
    expect(small.sentTokens).toBeLessThanOrEqual(1_500);
    expect(small.verbatimIds.length).toBeLessThan(prepared.verbatimIds.length);
  });

  it("states every planted fact's latest value and cites its passage verbatim", () => {
    // Assess
    for (const fact of thread.facts) {
      const found = prepared.facts.find((f) => f.key === fact.key);
      expect(found?.current.value, fact.key).toBe(fact.value);
      expect(prepared.text.replace(/\s+/g, " "), fact.key).toContain(fact.needle.replace(/\s+/g, " "));
      expect(prepared.verbatimIds, fact.key).toContain(found?.current.passageId);
    }
  });

  it("lists superseded values with the passage that replaced them", () => {
    // Prepare
    const total = prepared.facts.find((f) => f.key === "total");
    const planted = thread.facts.find((f) => f.key === "total");

    // Assess
    expect(total?.superseded.map((s) => s.value)).toEqual(planted?.superseded);
    expect(prepared.text).toContain("## Superseded");
    const line = prepared.text.split("\n").find((l) => l.startsWith("- total:"));
    expect(line).toContain(`${total?.current.value} [${total?.current.passageId}]`);
  });

  it("summarizes what it left out, citing message ids, and accounts for every passage", () => {
    // Assess
    expect(prepared.text).toContain("## Not shown");
    expect(prepared.text).toMatch(/Quoted copies of earlier messages \(\d+\): (within )?m\d+/);
    expect(prepared.verbatimIds.length + prepared.summarizedIds.length).toBe(prepared.passages.length);
  });

  it("is plain versioned data that survives a JSON round trip", () => {
    // Act
    const parsed = PreparedContext.parse(JSON.parse(JSON.stringify(prepared)));

    // Assess
    expect(parsed).toEqual(prepared);
  });
});

describe("fetch_context", () => {
  const tool = createFetchContextTool(async () => prepared);
  const ctx = {} as ToolContext;

  it("is a read tool taking one id", () => {
    // Assess
    expect(tool.name).toBe(FETCH_CONTEXT_TOOL);
    expect(tool.effect).toBe("read");
    expect(tool.input.safeParse({ id: "m1" }).success).toBe(true);
    expect(tool.input.safeParse({}).success).toBe(false);
  });

  it("returns a summarized passage in full, with its message's sender and subject", async () => {
    // Prepare
    const id = prepared.summarizedIds[0] ?? "";
    const passage = prepared.passages.find((p) => p.id === id);

    // Act
    const out = await tool.run({ id }, ctx);

    // Assess
    expect(out.isError).toBeUndefined();
    const body = JSON.parse(out.content) as { passages: { id: string; text: string }[]; message: { id: string } };
    expect(body.passages).toEqual([expect.objectContaining({ id, text: passage?.text })]);
    expect(body.message.id).toBe(thread.messages[Number(passage?.message.slice(1)) - 1]?.id);
  });

  it("returns a whole message by its alias", async () => {
    // Act
    const out = await tool.run({ id: "m1" }, ctx);

    // Assess
    const body = JSON.parse(out.content) as { passages: { id: string }[] };
    expect(body.passages.map((p) => p.id)).toEqual(
      prepared.passages.filter((p) => p.message === "m1").map((p) => p.id),
    );
  });

  it("answers an unknown id with a recoverable error", async () => {
    // Act
    const out = await tool.run({ id: "m99999:L1-2" }, ctx);

    // Assess
    expect(out.isError).toBe(true);
    expect(out.content).toMatch(/unknown id/);
  });
});
