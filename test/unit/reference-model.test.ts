import { describe, expect, it } from "vitest";
import { SYSTEM_PROMPT } from "../../lambdas/shared/agent/prompt.js";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import type {
  Message,
  ModelRequest,
  ModelResponse,
  ToolResultBlock,
  ToolUseBlock,
} from "../../lambdas/shared/model/types.js";
import type { Finding, NormalizedPo } from "../../lambdas/shared/po/model.js";
import { transformPo } from "../../lambdas/shared/po/transform.js";
import { toolSpecs } from "../../lambdas/shared/tools/registry.js";
import { samplePo } from "../support/stack.js";

const po = transformPo(samplePo("acme", "01-packaging-saved.json"));
/** The stored version extract returned: every later call names it, never re-sends the PO. */
const REF = { artifactId: "po_0123456789abcdef", version: 1 };

/** A conversation built turn by turn, as the orchestrator rebuilds it from the ledger. */
class History {
  readonly messages: Message[] = [{ role: "user", content: [{ type: "text", text: 'Process "po.json".' }] }];
  private n = 0;

  /** One assistant turn with these tool calls, then the user turn with their results. */
  turn(...calls: { name: string; input: unknown; content: string; isError?: boolean }[]): this {
    this.n++;
    const uses: ToolUseBlock[] = calls.map((c, i) => ({
      type: "tool_use",
      id: `toolu_h${this.n}_${i}`,
      name: c.name,
      input: c.input,
    }));
    const results: ToolResultBlock[] = calls.map((c, i) => ({
      type: "tool_result",
      tool_use_id: `toolu_h${this.n}_${i}`,
      content: c.content,
      ...(c.isError ? { is_error: true } : {}),
    }));
    this.messages.push({ role: "assistant", content: uses }, { role: "user", content: results });
    return this;
  }
}

const extracted = (p: NormalizedPo = po) => ({
  name: "extract",
  input: {},
  content: JSON.stringify({ format: "json", artifact: REF, po: p }),
});
const validated = (findings: Finding[], ref = REF) => ({
  name: "validate",
  input: ref,
  content: JSON.stringify({ ...ref, findings, errors: findings.filter((f) => f.severity === "error").length }),
});
const transformed = (to = REF) => ({
  name: "transform",
  input: REF,
  content: JSON.stringify({ ...to, changed: to.version === REF.version ? [] : ["/lines/0/unit"] }),
});
const UNKNOWN_SUPPLIER: Finding = {
  code: "UNKNOWN_SUPPLIER",
  severity: "warning",
  message: "Supplier Riverbend Tooling Co. is not in Acme Manufacturing's vendor list.",
  path: "supplier",
};

async function ask(messages: Message[]): Promise<ModelResponse> {
  const request: ModelRequest = {
    model: REFERENCE_MODEL,
    system: SYSTEM_PROMPT,
    rules: "Purchase orders up to $5,000 can be saved without asking anyone.",
    tools: toolSpecs(),
    messages,
    maxTokens: 2048,
  };
  return new ReferenceModelClient().create(request);
}

const toolUses = (r: ModelResponse) => r.content.filter((b): b is ToolUseBlock => b.type === "tool_use");
const finalText = (r: ModelResponse) =>
  r.content
    .filter((b) => b.type === "text")
    .map((b) => b.text)
    .join("\n");

describe("ReferenceModelClient: the standard procedure", () => {
  it("calls extract (with no arguments) on the first turn", async () => {
    // Act
    const r = await ask(new History().messages);

    // Assess
    expect(toolUses(r).map((u) => [u.name, u.input])).toEqual([["extract", {}]]);
    expect(r.stop_reason).toBe("tool_use");
  });

  it("after extract, calls validate and transform in ONE turn with the stored version's reference", async () => {
    // Act
    const r = await ask(new History().turn(extracted()).messages);

    // Assess
    const uses = toolUses(r);
    expect(uses.map((u) => u.name)).toEqual(["validate", "transform"]);
    expect(uses.map((u) => u.input)).toEqual([REF, REF]);
  });

  it("after validate and transform without problems, saves that validated version by reference", async () => {
    // Act
    const r = await ask(new History().turn(extracted()).turn(validated([]), transformed()).messages);

    // Assess
    expect(toolUses(r).map((u) => [u.name, u.input])).toEqual([["save", REF]]);
  });

  it("validates the version transform produced before saving it", async () => {
    // Prepare
    const v2 = { ...REF, version: 2 };
    const history = new History().turn(extracted()).turn(validated([]), transformed(v2));

    // Act
    const first = await ask(history.messages);
    const second = await ask(history.turn(validated([], v2)).messages);

    // Assess
    expect(toolUses(first).map((u) => [u.name, u.input])).toEqual([["validate", v2]]);
    expect(toolUses(second).map((u) => [u.name, u.input])).toEqual([["save", v2]]);
  });

  it("ends with OUTCOME: saved when save succeeded", async () => {
    // Act
    const r = await ask(
      new History()
        .turn(extracted())
        .turn(validated([]), transformed())
        .turn({ name: "save", input: REF, content: JSON.stringify({ saved: true }) }).messages,
    );

    // Assess
    expect(toolUses(r)).toEqual([]);
    expect(finalText(r)).toMatch(/^OUTCOME: saved — PO ACM-PO-22817 saved/);
    expect(r.stop_reason).toBe("end_turn");
  });
});

describe("ReferenceModelClient: endings other than saved", () => {
  it("ends with OUTCOME: failed carrying the reason when extract reports an error", async () => {
    // Prepare
    const history = new History().turn({
      name: "extract",
      input: {},
      content: "cannot read the document: invalid JSON (truncated?)",
      isError: true,
    });

    // Act
    const r = await ask(history.messages);

    // Assess
    expect(toolUses(r)).toEqual([]);
    expect(finalText(r)).toBe("OUTCOME: failed — cannot read the document: invalid JSON (truncated?)");
  });

  it("ends with OUTCOME: rejected when validate finds an error", async () => {
    // Prepare
    const mismatch: Finding = {
      code: "TOTAL_MISMATCH",
      severity: "error",
      message: "The lines add up to $2,318.75, but the PO total is $2,381.75.",
    };

    // Act
    const r = await ask(new History().turn(extracted()).turn(validated([mismatch]), transformed()).messages);

    // Assess
    expect(toolUses(r)).toEqual([]);
    expect(finalText(r)).toBe(`OUTCOME: rejected — ${mismatch.message}`);
  });

  it('ends with OUTCOME: rejected when the save comes back "Not executed: ... rejected by" a human', async () => {
    // Prepare
    const history = new History().turn(extracted()).turn(validated([]), transformed()).turn({
      name: "save",
      input: REF,
      content:
        "Not executed: save needed approval (over the $5,000.00 limit) and was rejected by priya.raman@acme-mfg.example: wrong vendor.",
      isError: true,
    });

    // Act
    const r = await ask(history.messages);

    // Assess
    expect(toolUses(r)).toEqual([]);
    expect(finalText(r)).toMatch(/^OUTCOME: rejected — Not executed: .*rejected by priya/);
  });
});

describe("ReferenceModelClient: escalation", () => {
  it("escalates an UNKNOWN_SUPPLIER finding to a human with the finding as reason", async () => {
    // Act
    const r = await ask(new History().turn(extracted()).turn(validated([UNKNOWN_SUPPLIER]), transformed()).messages);

    // Assess
    expect(toolUses(r).map((u) => [u.name, u.input])).toEqual([
      ["escalate_to_human", { reason: UNKNOWN_SUPPLIER.message, ...REF }],
    ]);
  });

  it("saves once the escalation is approved", async () => {
    // Prepare
    const history = new History()
      .turn(extracted())
      .turn(validated([UNKNOWN_SUPPLIER]), transformed())
      .turn({
        name: "escalate_to_human",
        input: { reason: UNKNOWN_SUPPLIER.message, ...REF },
        content: JSON.stringify({ decision: "approved", by: "priya.raman@acme-mfg.example", comment: "" }),
      });

    // Act
    const r = await ask(history.messages);

    // Assess
    expect(toolUses(r).map((u) => [u.name, u.input])).toEqual([["save", REF]]);
  });
});

describe("ReferenceModelClient: response metadata", () => {
  it("marks its usage as estimated and reports itself as the reference model", async () => {
    // Act
    const r = await ask(new History().turn(extracted()).messages);

    // Assess
    expect(r.usageEstimated).toBe(true);
    expect(r.model).toBe(REFERENCE_MODEL);
    expect(r.usage.input_tokens).toBeGreaterThan(0);
    expect(r.usage.output_tokens).toBeGreaterThan(0);
  });

  it("gives every tool_use a unique id, within a turn and across turns", async () => {
    // Prepare
    const first = await ask(new History().messages);
    const second = await ask(new History().turn(extracted()).messages);

    // Act
    const ids = [...toolUses(first), ...toolUses(second)].map((u) => u.id);

    // Assess
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
  });
});
