import type { CustomerConfig } from "../config/schema.js";
import { canonicalJson, sha256 } from "../ledger/ledger.js";
import type { ArtifactRecord } from "../ledger/records.js";
import { toWireName } from "../model/types-wire.js";
import type { NormalizedPo } from "../po/model.js";
import { formatMinor } from "../po/money.js";
import { policyRevisionOf } from "../policy/cedar.js";
import { evaluatePolicy } from "../policy/evaluate.js";
import type { PolicyInput } from "../policy/types.js";
import type { Tool } from "../tools/types.js";
import { type ArtifactRef, describeDiff, documentVersion, findVersion, poOf } from "./artifacts.js";
import { ESCALATE_TOOL, findTool, TOOLS } from "./tool-lookup.js";

export interface ApprovalRequest {
  /** Why, in words; ends with the policy revision `(policy cedar-…)` until records carry it as a field. */
  reason: string;
  /** The rule that requires a human: a tier name, `effect:dangerous` or `model-escalation`. */
  rule: string;
  approvers: string[];
  summary: { poNumber: string; supplierName: string; amount: string };
  /** The policy revision that decided; also at the end of `reason` until approval records carry it as a field. */
  policyRevision: string;
  /** The artifact version the call would write (bound by content hash). */
  artifact?: { artifactId: string; version: number; poSha256: string };
  /** The changes against the document a human must see before approving. */
  diff?: string[];
}

/** What the guard decided about one tool_use block; every decision names the policy revision. */
export type GuardVerdict =
  | { kind: "rejected"; error: string }
  | { kind: "run"; argsHash: string; policyRevision: string }
  | { kind: "approval"; argsHash: string; request: ApprovalRequest; policyRevision: string };

/** Largest tool input the guard reads (canonical JSON characters): a PO is referenced, never sent. */
export const MAX_ARGUMENT_CHARS = 64 * 1024;

/** Who asks for tool calls: the orchestrator, on the model's behalf (the Cedar principal). */
export const REQUESTING_AGENT = "orchestrator";

export function argsHash(input: unknown): string {
  return sha256(canonicalJson(input ?? {}));
}

/**
 * Binds an approval to one exact call: run, tool_use id, tool name, argument hash and, when given,
 * the policy revision that asked for it. Approving it can execute nothing else.
 */
export function approvalIdFor(
  runId: string,
  toolUseId: string,
  name: string,
  hash: string,
  policyRevision?: string,
): string {
  const rev = policyRevision === undefined ? "" : `\n${policyRevision}`;
  return `apr_${sha256(`${runId}\n${toolUseId}\n${name}\n${hash}${rev}`).slice(0, 24)}`;
}

/** The revision an approval was requested under: the record's field when it has one, else the `reason` suffix. */
export function policyRevisionOfApproval(approval: { reason: string }): string | undefined {
  if ("policyRevision" in approval && typeof approval.policyRevision === "string") return approval.policyRevision;
  return /\(policy (cedar-[0-9a-f]{16})\)$/.exec(approval.reason)?.[1];
}

/** The stored approval, as far as the binding is concerned. */
export interface BoundApproval {
  approvalId: string;
  runId: string;
  call: { toolUseId: string; name: string; input?: unknown };
  callHash: string;
  reason: string;
}

/**
 * Why an approval record no longer matches the call it was issued for, or undefined when it does:
 * the stored arguments must hash to the recorded hash, and the id must be derived from run, call,
 * hash (and revision). A record edited after the email went out fails here.
 */
export function bindingProblem(
  approval: BoundApproval,
  runId?: string,
  use?: { id: string; input: unknown },
): string | undefined {
  const hash = argsHash(approval.call.input);
  if (hash !== approval.callHash) return "the approved arguments changed after the request was sent";
  if (runId !== undefined && approval.runId !== runId) return `the approval belongs to run ${approval.runId}`;
  if (use !== undefined && (use.id !== approval.call.toolUseId || argsHash(use.input) !== hash)) {
    return "the approval was issued for another call";
  }
  const { toolUseId, name } = approval.call;
  const rev = policyRevisionOfApproval(approval);
  const ids = [approvalIdFor(approval.runId, toolUseId, name, hash)];
  if (rev !== undefined) ids.push(approvalIdFor(approval.runId, toolUseId, name, hash, rev));
  if (!ids.includes(approval.approvalId)) return "the approval id does not match the call it names";
  return undefined;
}

/** What the guard knows about the run beyond the call: its PO versions and what humans refused. */
export interface GuardState {
  /** Every version of this run's artifacts (never another run's: they are read from this run's partition). */
  artifacts: readonly ArtifactRecord[];
  /** PO numbers whose save a human rejected in this run: they cannot be saved again in it. */
  rejectedPoNumbers: ReadonlySet<string>;
  /** Tools mounted from the customer's MCP servers for this run; their effect comes from the config. */
  mounted: readonly Tool[];
  /** Who asks (the Cedar principal). @default REQUESTING_AGENT */
  agent: string;
}

const NO_STATE: GuardState = { artifacts: [], rejectedPoNumbers: new Set(), mounted: [], agent: REQUESTING_AGENT };

/** Tools that take an artifact reference instead of a PO. */
const WRITES_ARTIFACT = new Set(["save"]);

/**
 * Sits between the model and every tool. Unknown tools and schema-invalid arguments go back
 * to the model as errors; writes are checked against the customer's structured policy on the
 * stored artifact version they would write (never on what the model says about it) and, when not
 * allowed, become approval requests; dangerous calls always need a human.
 */
export function guardCall(
  customer: CustomerConfig,
  name: string,
  input: unknown,
  given: Partial<GuardState> = {},
): GuardVerdict {
  const state: GuardState = { ...NO_STATE, ...given };
  const { mounted } = state;
  const tool = findTool(name, mounted);
  if (!tool) {
    return {
      kind: "rejected",
      error: `unknown tool "${toWireName(String(name)).slice(0, 80)}"; available tools: ${[...TOOLS, ...mounted].map((t) => toWireName(t.name)).join(", ")}`,
    };
  }
  const size = canonicalJson(input ?? {}).length;
  if (size > MAX_ARGUMENT_CHARS) {
    return {
      kind: "rejected",
      error: `arguments for ${name} are ${size} characters; the limit is ${MAX_ARGUMENT_CHARS} (refer to the stored PO by artifactId and version)`,
    };
  }
  const parsed = tool.input.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(arguments)"}: ${i.message}`)
      .join("; ");
    return { kind: "rejected", error: `invalid arguments for ${toWireName(name)}: ${issues}` };
  }
  const hash = argsHash(input);
  const revision = policyRevisionOf(customer);
  const ref = artifactRefOf(parsed.data);
  const artifact = ref ? findVersion(state.artifacts, ref) : undefined;
  if (ref && !artifact) {
    return {
      kind: "rejected",
      error: `${name}: artifact ${ref.artifactId} has no version ${ref.version} in this run; use a reference returned by extract, amend, draft_po or transform`,
    };
  }
  let po: NormalizedPo | undefined;
  if (artifact) {
    try {
      po = poOf(artifact);
    } catch (err) {
      return { kind: "rejected", error: `${name}: ${(err as Error).message}` };
    }
  }
  if (name === ESCALATE_TOOL) {
    const { reason } = parsed.data as { reason: string };
    const request = escalationRequest(customer, reason, po, "model-escalation");
    return { kind: "approval", argsHash: hash, request: withArtifact(request, artifact), policyRevision: revision };
  }
  if (tool.effect === "read") return { kind: "run", argsHash: hash, policyRevision: revision };
  if (WRITES_ARTIFACT.has(name)) {
    if (!artifact || !po) return { kind: "rejected", error: `${name} needs { artifactId, version }` };
    if (artifact.validation === undefined) {
      return {
        kind: "rejected",
        error: `${name}: version ${artifact.version} was not validated; call validate on exactly this version first`,
      };
    }
    if (artifact.validation.errors > 0) {
      return {
        kind: "rejected",
        error: `${name}: version ${artifact.version} failed validation with ${artifact.validation.errors} error(s); it cannot be saved`,
      };
    }
    if (state.rejectedPoNumbers.has(po.poNumber)) {
      return {
        kind: "rejected",
        error: `${name}: a human rejected saving PO ${po.poNumber} in this run; it cannot be saved again`,
      };
    }
  }
  if (!po || !WRITES_ARTIFACT.has(name)) {
    // A write without a PO cannot be checked against the policy: a human decides. Nor can a write
    // that only names an artifact (a mounted ERP tool): what it writes is its own arguments, which
    // the policy never saw, so the artifact vouches for nothing.
    const request = escalationRequest(
      customer,
      po
        ? `${name} is a ${tool.effect} call whose arguments, not the PO it names, are what it writes`
        : `${name} is a ${tool.effect} call without a PO to check`,
      po,
      `effect:${tool.effect}`,
    );
    return { kind: "approval", argsHash: hash, request: withArtifact(request, artifact), policyRevision: revision };
  }
  const decision = evaluatePolicy(customer, {
    ...policyInput(po),
    tool: name,
    effect: tool.effect,
    agent: state.agent,
  });
  const human = artifact?.needsHuman ?? [];
  // Dangerous calls never run on the policy's word alone, whatever a policy file says.
  if (decision.decision === "allow" && tool.effect !== "dangerous" && human.length === 0) {
    return { kind: "run", argsHash: hash, policyRevision: decision.policyRevision };
  }
  const approvers =
    decision.decision === "require_approval" ? decision.approvers : escalationRequest(customer, "", po, "").approvers;
  const amendmentWhy =
    human.length === 0
      ? ""
      : human.includes("model-draft")
        ? "The PO was drafted by the model from the raw document, not read by a parser; a human must confirm it. "
        : `The model amended ${human.join(", ")} of the PO read from the document; a human must confirm the change. `;
  const rule =
    tool.effect === "dangerous"
      ? "effect:dangerous"
      : decision.decision === "allow"
        ? `amendment:${human.join("+")}`
        : human.length > 0
          ? `${decision.tier}+amendment:${human.join("+")}`
          : decision.tier;
  const reason = decision.decision === "allow" ? amendmentWhy.trim() : `${amendmentWhy}${decision.reason}`;
  return {
    kind: "approval",
    argsHash: hash,
    policyRevision: decision.policyRevision,
    request: withArtifact(
      {
        reason: withRevision(reason, decision.policyRevision),
        rule,
        approvers,
        summary: summarize(po),
        policyRevision: decision.policyRevision,
      },
      artifact,
      state.artifacts,
    ),
  };
}

/** The `{ artifactId, version }` a tool's parsed arguments name, if any. */
export function artifactRefOf(args: unknown): ArtifactRef | undefined {
  const a = args as { artifactId?: unknown; version?: unknown } | undefined;
  if (typeof a?.artifactId === "string" && typeof a.version === "number") {
    return { artifactId: a.artifactId, version: a.version };
  }
  return undefined;
}

/** Binds a request to the artifact version (and its hash) and adds the diff a human must see. */
function withArtifact(
  request: ApprovalRequest,
  artifact: ArtifactRecord | undefined,
  all: readonly ArtifactRecord[] = [],
): ApprovalRequest {
  if (!artifact) return request;
  const binding = { artifactId: artifact.artifactId, version: artifact.version, poSha256: artifact.poSha256 };
  if (artifact.needsHuman.length === 0) return { ...request, artifact: binding };
  const doc = documentVersion(all);
  let base: NormalizedPo | undefined;
  try {
    base = doc && !artifact.needsHuman.includes("model-draft") ? poOf(doc) : undefined;
  } catch {
    base = undefined;
  }
  return { ...request, artifact: binding, diff: describeDiff(base, poOf(artifact)) };
}

function withRevision(reason: string, revision: string): string {
  return `${reason} (policy ${revision})`;
}

/** What the policy needs to know about a PO. */
export function policyInput(po: NormalizedPo): PolicyInput {
  return {
    documentId: po.poNumber,
    documentType: `purchase_order/${po.source.format}`,
    totalMinor: po.totalMinor,
    currency: po.currency,
    supplierName: po.supplier.name,
    supplierId: po.supplier.id,
    orderDate: po.orderDate,
  };
}

function summarize(po: NormalizedPo | undefined): ApprovalRequest["summary"] {
  if (!po) return { poNumber: "(unknown)", supplierName: "(unknown)", amount: "(unknown)" };
  return { poNumber: po.poNumber, supplierName: po.supplier.name, amount: formatMinor(po.totalMinor, po.currency) };
}

function escalationRequest(
  customer: CustomerConfig,
  reason: string,
  po: NormalizedPo | undefined,
  rule: string,
): ApprovalRequest {
  // The approvers a policy would ask for this PO; without a PO, the last (default) tier's.
  let approvers: string[];
  if (po) {
    const decision = evaluatePolicy(customer, policyInput(po));
    const tier = customer.approvalPolicy.tiers.find((t) => t.name === decision.tier);
    approvers = decision.decision === "require_approval" ? decision.approvers : [...(tier?.approvers ?? [])];
  } else {
    approvers = [...(customer.approvalPolicy.tiers.at(-1)?.approvers ?? [])];
  }
  const policyRevision = policyRevisionOf(customer);
  // The model's own words stay as they are: the policy did not decide a model escalation.
  const why = rule === "model-escalation" ? reason : withRevision(reason, policyRevision);
  return { reason: why, rule, approvers, summary: summarize(po), policyRevision };
}
