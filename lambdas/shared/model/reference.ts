import { REFERENCE_MODEL } from "../constants.js";
import type { Finding, NormalizedPo } from "../po/model.js";
import type { Message, ModelClient, ModelRequest, ModelResponse, ToolUseBlock } from "./types.js";

interface ToolOutcome {
  name: string;
  input: unknown;
  content: string;
  isError: boolean;
}

/**
 * The offline reference model: deterministic, no network. It walks the standard procedure
 * (extract → validate + transform in parallel → save), asks a human about what it cannot decide
 * (unknown suppliers), and leaves the approval policy to the guard by calling `save`: a write the
 * policy does not allow becomes an approval request, exactly as with Claude.
 * Usage figures are estimates (about four characters per token) and are flagged as such.
 */
export class ReferenceModelClient implements ModelClient {
  readonly provider = "reference";

  async create(request: ModelRequest): Promise<ModelResponse> {
    const turn = request.messages.filter((m) => m.role === "assistant").length + 1;
    const outcomes = collectOutcomes(request.messages);
    const decision = decide(outcomes, new Set(request.tools.map((t) => t.name)));
    const content: ModelResponse["content"] = [];
    if (decision.kind === "tools") {
      content.push({ type: "text", text: decision.thought });
      decision.calls.forEach((c, i) => {
        content.push({ type: "tool_use", id: `toolu_ref_${turn}_${i + 1}`, name: c.name, input: c.input });
      });
    } else {
      content.push({ type: "text", text: `OUTCOME: ${decision.outcome} — ${decision.reason}` });
    }
    const inputChars =
      request.system.length +
      request.rules.length +
      JSON.stringify(request.tools).length +
      JSON.stringify(request.messages).length;
    return {
      model: REFERENCE_MODEL,
      content,
      stop_reason: decision.kind === "tools" ? "tool_use" : "end_turn",
      usage: { input_tokens: Math.ceil(inputChars / 4), output_tokens: Math.ceil(JSON.stringify(content).length / 4) },
      usageEstimated: true,
    };
  }
}

type Decision =
  | { kind: "tools"; thought: string; calls: { name: string; input: unknown }[] }
  | { kind: "end"; outcome: "saved" | "rejected" | "failed"; reason: string };

function collectOutcomes(messages: Message[]): Map<string, ToolOutcome> {
  const uses = new Map<string, ToolUseBlock>();
  const latest = new Map<string, ToolOutcome>();
  for (const m of messages) {
    for (const block of m.content) {
      if (block.type === "tool_use") uses.set(block.id, block);
      if (block.type === "tool_result") {
        const use = uses.get(block.tool_use_id);
        if (!use) continue;
        // The guard refused the call (unknown tool, invalid arguments): the call did not happen; ask again.
        if (
          block.is_error === true &&
          /^(invalid arguments for |unknown tool |your answer was cut off )/.test(block.content)
        )
          continue;
        latest.set(use.name, {
          name: use.name,
          input: use.input,
          content: block.content,
          isError: block.is_error === true,
        });
      }
    }
  }
  return latest;
}

interface Ref {
  artifactId: string;
  version: number;
}

/** The `{ artifactId, version }` a tool result names. */
function refIn(content: string): Ref | undefined {
  const r = parse<Partial<Ref>>(content);
  return typeof r?.artifactId === "string" && typeof r.version === "number"
    ? { artifactId: r.artifactId, version: r.version }
    : undefined;
}

function parse<T>(content: string): T | undefined {
  try {
    return JSON.parse(content) as T;
  } catch {
    return undefined;
  }
}

/** A mounted tool of the customer's systems by its own name (`erp.lookup_vendor` for `lookup_vendor`). */
function mountedTool(tools: ReadonlySet<string>, suffix: string): string | undefined {
  return [...tools].find((n) => n.includes(".") && n.endsWith(`.${suffix}`));
}

function decide(outcomes: Map<string, ToolOutcome>, tools: ReadonlySet<string> = new Set()): Decision {
  const extracted = outcomes.get("extract");
  if (!extracted) {
    return { kind: "tools", thought: "First I read the document.", calls: [{ name: "extract", input: {} }] };
  }
  if (extracted.isError) {
    return { kind: "end", outcome: "failed", reason: extracted.content };
  }
  const read = parse<{ po: NormalizedPo; artifact: Ref }>(extracted.content);
  const po = read?.po;
  if (!po || !read?.artifact) return { kind: "end", outcome: "failed", reason: "extract returned no purchase order" };

  const validated = outcomes.get("validate");
  const transformed = outcomes.get("transform");
  if (!validated || !transformed) {
    return {
      kind: "tools",
      thought: `PO ${po.poNumber} read. Validating and normalizing it in parallel.`,
      calls: [
        { name: "validate", input: read.artifact },
        { name: "transform", input: read.artifact },
      ],
    };
  }
  if (validated.isError || transformed.isError) {
    return { kind: "end", outcome: "failed", reason: validated.isError ? validated.content : transformed.content };
  }
  // The version to write is transform's; when it made a new one, that exact version is validated too.
  const target = refIn(transformed.content) ?? read.artifact;
  if (refIn(validated.content)?.version !== target.version) {
    return {
      kind: "tools",
      thought: `Transform produced version ${target.version}; validating exactly that version.`,
      calls: [{ name: "validate", input: target }],
    };
  }
  const findings = parse<{ findings: Finding[] }>(validated.content)?.findings ?? [];
  const errors = findings.filter((f) => f.severity === "error");
  if (errors.length > 0) {
    return { kind: "end", outcome: "rejected", reason: errors.map((f) => f.message).join(" ") };
  }
  const normalized = po;

  // What a human must look at: a supplier not on the list, or fields read with low confidence (PDF, email body).
  const unknownSupplier = findings.find((f) => f.code === "UNKNOWN_SUPPLIER" || f.code === "LOW_CONFIDENCE_FIELDS");
  const escalation = outcomes.get("escalate_to_human");
  if (unknownSupplier && !escalation) {
    return {
      kind: "tools",
      thought: "The supplier is not on the customer's vendor list; a human must decide.",
      calls: [{ name: "escalate_to_human", input: { reason: unknownSupplier.message, ...target } }],
    };
  }
  if (escalation?.isError) {
    return { kind: "end", outcome: "rejected", reason: escalation.content };
  }

  // The customer's ERP, when mounted: the vendor's standing and the cost center's budget, before saving.
  const lookupVendor = mountedTool(tools, "lookup_vendor");
  const checkBudget = mountedTool(tools, "check_budget");
  const erpCalls: { name: string; input: unknown }[] = [];
  if (lookupVendor && !outcomes.has(lookupVendor)) {
    erpCalls.push({ name: lookupVendor, input: { query: normalized.supplier.id ?? normalized.supplier.name } });
  }
  if (checkBudget && !outcomes.has(checkBudget)) {
    erpCalls.push({
      name: checkBudget,
      input: { costCenter: normalized.buyer.name, amountMinor: normalized.totalMinor, currency: normalized.currency },
    });
  }
  if (erpCalls.length > 0) {
    return { kind: "tools", thought: "Checking the vendor and the budget in the customer's ERP.", calls: erpCalls };
  }
  // An ERP that could not answer is noted in its tool_result; the policy still decides the save.
  const vendorCheck = lookupVendor ? outcomes.get(lookupVendor) : undefined;
  const vendors =
    vendorCheck && !vendorCheck.isError
      ? parse<{ vendors?: { id: string; status: string }[] }>(vendorCheck.content)?.vendors
      : undefined;
  const vendor = vendors?.find((v) => v.id === normalized.supplier.id) ?? vendors?.[0];
  if (vendor && vendor.status !== "active") {
    return {
      kind: "end",
      outcome: "rejected",
      reason: `vendor ${vendor.id} is ${vendor.status} in the customer's ERP.`,
    };
  }
  const budgetCheck = checkBudget ? outcomes.get(checkBudget) : undefined;
  const budget =
    budgetCheck && !budgetCheck.isError
      ? parse<{ fits?: boolean; costCenter?: string; availableMinor?: number }>(budgetCheck.content)
      : undefined;
  if (budget?.fits === false && !escalation) {
    return {
      kind: "tools",
      thought: "The order does not fit the cost center's remaining budget; a human must decide.",
      calls: [
        {
          name: "escalate_to_human",
          input: {
            reason: `PO total exceeds the remaining budget of cost center ${budget.costCenter ?? "(unknown)"} (${budget.availableMinor ?? "?"} minor units left).`,
            ...target,
          },
        },
      ],
    };
  }

  const saved = outcomes.get("save");
  if (!saved) {
    return {
      kind: "tools",
      thought: `PO ${normalized.poNumber} is valid. Saving it; the approval policy decides whether a human signs first.`,
      calls: [{ name: "save", input: target }],
    };
  }
  if (saved.isError) {
    const rejectedByHuman = /approval|rejected|timed out/i.test(saved.content);
    return { kind: "end", outcome: rejectedByHuman ? "rejected" : "failed", reason: saved.content };
  }
  const approvedBy = /^Approved by (.+?)\. (?=[{[])/.exec(saved.content)?.[1];
  return {
    kind: "end",
    outcome: "saved",
    reason: `PO ${normalized.poNumber} saved${approvedBy ? ` (approved by ${approvedBy})` : ""}.`,
  };
}
