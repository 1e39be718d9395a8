import { argsHash } from "../approval/binding.js";
import {
  type ApprovalRequest,
  modelEscalationRequest,
  policyRequest,
  uncheckedWriteRequest,
} from "../approval/request.js";
import type { CustomerConfig } from "../config/schema.js";
import { canonicalJson, foldPoNumber } from "../ledger/ledger.js";
import type { ArtifactRecord } from "../ledger/records.js";
import { toWireName } from "../model/types-wire.js";
import type { NormalizedPo } from "../po/model.js";
import { policyRevisionOf } from "../policy/cedar.js";
import { evaluatePolicy, policyInput } from "../policy/evaluate.js";
import type { Tool } from "../tools/types.js";
import { type ArtifactRef, findVersion, poOf } from "./artifacts.js";
import { ESCALATE_TOOL, findTool, TOOLS } from "./tool-lookup.js";

/** What the guard decided about one tool_use block; every decision names the policy revision in force. */
export type GuardVerdict =
  | { kind: "rejected"; error: string }
  | { kind: "run"; argsHash: string; policyRevision: string }
  | { kind: "approval"; argsHash: string; request: ApprovalRequest; policyRevision: string };

/** Largest tool input the guard reads (canonical JSON characters): a PO is referenced, never sent. */
export const MAX_ARGUMENT_CHARS = 64 * 1024;

/** Who asks for tool calls: the orchestrator, on the model's behalf (the Cedar principal). */
export const REQUESTING_AGENT = "orchestrator";

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
    const request = modelEscalationRequest(customer, reason, po, artifact);
    return { kind: "approval", argsHash: hash, request, policyRevision: revision };
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
    if (state.rejectedPoNumbers.has(foldPoNumber(po.poNumber))) {
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
    const request = uncheckedWriteRequest(customer, tool, po, artifact);
    return { kind: "approval", argsHash: hash, request, policyRevision: revision };
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
  return {
    kind: "approval",
    argsHash: hash,
    policyRevision: decision.policyRevision,
    request: policyRequest(customer, tool, decision, po, artifact, state.artifacts),
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
