import { SCHEMA_VERSION } from "../constants.js";
import { type AuditLine, foldPoNumber, type Ledger, type RunFold, type RunState } from "./ledger.js";
import {
  type ApprovalRecord as Approval,
  ApprovalRecord,
  type ApprovalStatus,
  ApprovalStatus as ApprovalStatusEnum,
  type ArtifactRecord as Artifact,
  ArtifactRecord,
  type AuditRecord as Audit,
  AuditRecord,
  type Counters,
  type EmbeddedAudit,
  type OrderRecord as Order,
  OrderRecord,
  parseRecord,
  RECORD_VERSIONS,
  type RecordKind,
  type RunRecord as Run,
  RunRecord,
  RunStatus,
  type ToolCallRecord as ToolCall,
  ToolCallRecord,
  type TurnRecord as Turn,
  TurnRecord,
} from "./records.js";

type Fields = Parameters<Ledger["updateRun"]>[1];

/**
 * The ledger in memory, for the loop's unit tests: the same port and the same guarantees as the
 * DynamoDB store (put-once results, conditional claims, counters folded once), no emulator. Every
 * record goes through the same schema (and upgrade) as on the way out of DynamoDB, and reads hand
 * out copies, so a test cannot pass by mutating what the store holds.
 */
export class MemoryLedger implements Ledger {
  readonly tableName = "memory";
  private readonly runs = new Map<string, Run>();
  private readonly turns = new Map<string, Map<number, Turn>>();
  private readonly tools = new Map<string, Map<string, ToolCall>>();
  private readonly artifacts = new Map<string, Map<string, Artifact>>();
  private readonly audits = new Map<string, Audit[]>();
  private readonly approvals = new Map<string, Approval>();
  private readonly orders = new Map<string, Order>();
  /** Every call made, by method name: tests count round trips on it like on the wire. */
  readonly calls: string[] = [];

  constructor(private readonly now: () => Date = () => new Date()) {}

  /**
   * Loads stored records as they are, of any version (a fixture written by an older build): they
   * are upgraded when read, like items coming out of DynamoDB.
   */
  seed(records: LedgerDump): void {
    for (const r of records.runs ?? []) this.runs.set(String(r.runId), structuredClone(r) as Run);
    for (const t of records.turns ?? [])
      this.inner(this.turns, String(t.runId)).set(Number(t.turn), structuredClone(t) as Turn);
    for (const c of records.toolCalls ?? []) {
      this.inner(this.tools, String(c.runId)).set(`${c.toolUseId}#${c.argsHash}`, structuredClone(c) as ToolCall);
    }
    for (const a of records.artifacts ?? []) {
      this.inner(this.artifacts, String(a.runId)).set(`${a.artifactId}#${a.version}`, structuredClone(a) as Artifact);
    }
    for (const a of records.approvals ?? []) this.approvals.set(String(a.approvalId), structuredClone(a) as Approval);
    for (const a of records.audit ?? []) {
      this.audits.set(String(a.runId), [...(this.audits.get(String(a.runId)) ?? []), structuredClone(a) as Audit]);
    }
    for (const o of records.orders ?? []) {
      this.orders.set(`${o.customer}#${foldPoNumber(String(o.poNumber))}`, structuredClone(o) as Order);
    }
  }

  private iso(): string {
    return this.now().toISOString();
  }

  private stamp(lines: readonly AuditLine[]): EmbeddedAudit[] {
    const at = this.iso();
    return lines.map((l) => ({ at: l.at ?? at, actor: l.actor, action: l.action, detail: l.detail }));
  }

  private count(name: string): void {
    this.calls.push(name);
  }

  private read<T>(schema: Parameters<typeof parseRecord<T>>[0], kind: RecordKind, item: unknown): T {
    return parseRecord(schema, kind, structuredClone(item));
  }

  private inner<K, V>(map: Map<string, Map<K, V>>, runId: string): Map<K, V> {
    let m = map.get(runId);
    if (!m) {
      m = new Map();
      map.set(runId, m);
    }
    return m;
  }

  // ---- runs -------------------------------------------------------------------------------

  async openRun(
    run: Omit<Run, "schemaVersion" | "createdAt" | "updatedAt" | "audit">,
    audit: readonly AuditLine[] = [],
  ): Promise<{ run: Run; created: boolean }> {
    this.count("openRun");
    const existing = this.runs.get(run.runId);
    if (existing) return { run: this.read(RunRecord, "run", existing), created: false };
    const at = this.iso();
    const item: Run = {
      ...run,
      schemaVersion: SCHEMA_VERSION,
      createdAt: at,
      updatedAt: at,
      ...(audit.length ? { audit: this.stamp(audit) } : {}),
    };
    this.runs.set(run.runId, structuredClone(item));
    return { run: item, created: true };
  }

  async getRun(runId: string): Promise<Run | undefined> {
    this.count("getRun");
    const run = this.runs.get(runId);
    return run ? this.read(RunRecord, "run", run) : undefined;
  }

  async requireRun(runId: string): Promise<Run> {
    const run = await this.getRun(runId);
    if (!run) throw new Error(`run ${runId} not found in the ledger`);
    return run;
  }

  async updateRun(
    runId: string,
    fields: Fields,
    options: { onlyIfStatusIn?: RunStatus[]; decided?: Approval } = {},
  ): Promise<boolean> {
    this.count("updateRun");
    const run = this.runs.get(runId);
    if (!run) throw new Error(`run ${runId}: conditional update of a missing run`);
    if (options.onlyIfStatusIn && !options.onlyIfStatusIn.includes(run.status)) return false;
    const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    Object.assign(run, structuredClone(defined), { updatedAt: this.iso() });
    if (options.decided) run.decided = [...(run.decided ?? []), structuredClone(options.decided)];
    return true;
  }

  async addCounters(runId: string, delta: Partial<Counters>): Promise<void> {
    if (!Object.values(delta).some((v) => v)) return;
    this.count("addCounters");
    const run = this.runs.get(runId);
    if (!run) throw new Error(`run ${runId}: counters of a missing run`);
    addInto(run.counters, delta);
  }

  async listRuns(statuses: readonly RunStatus[] = RunStatus.options): Promise<Run[]> {
    this.count("listRuns");
    return [...this.runs.values()]
      .filter((r) => statuses.includes(r.status))
      .map((r) => this.read(RunRecord, "run", r))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async resetRun(runId: string): Promise<void> {
    this.count("resetRun");
    this.turns.delete(runId);
    this.tools.delete(runId);
    const run = this.runs.get(runId);
    if (run?.status === "running") {
      run.turn = 0;
      delete run.folded;
    }
  }

  async loadRunState(runId: string): Promise<RunState | undefined> {
    this.count("loadRunState");
    const run = this.runs.get(runId);
    if (!run) return undefined;
    return {
      run: this.read(RunRecord, "run", run),
      turns: [...this.inner(this.turns, runId).values()]
        .sort((a, b) => a.turn - b.turn)
        .map((t) => this.read(TurnRecord, "turn", t)),
      toolCalls: [...this.inner(this.tools, runId).values()].map((c) => this.read(ToolCallRecord, "tool call", c)),
      artifacts: [...this.inner(this.artifacts, runId).values()]
        .sort((a, b) => a.artifactId.localeCompare(b.artifactId) || a.version - b.version)
        .map((a) => this.read(ArtifactRecord, "artifact", a)),
    };
  }

  async foldRun(runId: string, fold: RunFold): Promise<void> {
    if (!fold.steps.length && fold.turn === undefined && fold.poNumber === undefined && !fold.decided?.length) return;
    this.count("foldRun");
    const run = this.runs.get(runId);
    if (!run) throw new Error(`run ${runId}: fold into a missing run`);
    const folded = new Set(run.folded ?? []);
    const steps = fold.steps.filter((s) => !folded.has(s.key));
    for (const s of steps) addInto(run.counters, s.delta ?? {});
    if (steps.length) run.folded = [...(run.folded ?? []), ...steps.map((s) => s.key)];
    if (fold.turn !== undefined && run.turn <= fold.turn) run.turn = fold.turn;
    if (fold.poNumber !== undefined) run.poNumber ??= fold.poNumber;
    if (fold.decided?.length) run.decided = [...(run.decided ?? []), ...structuredClone(fold.decided)];
    run.updatedAt = this.iso();
  }

  // ---- turns and tool calls -----------------------------------------------------------------

  async getTurns(runId: string): Promise<Turn[]> {
    this.count("getTurns");
    return [...this.inner(this.turns, runId).values()]
      .sort((a, b) => a.turn - b.turn)
      .map((t) => this.read(TurnRecord, "turn", t));
  }

  async putTurn(
    turn: Omit<Turn, "schemaVersion" | "createdAt" | "audit">,
    audit: readonly AuditLine[] = [],
  ): Promise<{ turn: Turn; created: boolean }> {
    this.count("putTurn");
    const turns = this.inner(this.turns, turn.runId);
    const existing = turns.get(turn.turn);
    if (existing) return { turn: this.read(TurnRecord, "turn", existing), created: false };
    const item: Turn = {
      ...turn,
      schemaVersion: RECORD_VERSIONS.turn,
      createdAt: this.iso(),
      ...(audit.length ? { audit: this.stamp(audit) } : {}),
    };
    turns.set(turn.turn, structuredClone(item));
    return { turn: item, created: true };
  }

  async getToolCall(runId: string, toolUseId: string, argsHash: string): Promise<ToolCall | undefined> {
    this.count("getToolCall");
    const call = this.inner(this.tools, runId).get(`${toolUseId}#${argsHash}`);
    return call ? this.read(ToolCallRecord, "tool call", call) : undefined;
  }

  async getToolCalls(runId: string): Promise<ToolCall[]> {
    this.count("getToolCalls");
    return [...this.inner(this.tools, runId).values()].map((c) => this.read(ToolCallRecord, "tool call", c));
  }

  async putToolCall(
    call: Omit<ToolCall, "schemaVersion" | "createdAt" | "audit">,
    audit: readonly AuditLine[] = [],
  ): Promise<{ call: ToolCall; created: boolean }> {
    this.count("putToolCall");
    const calls = this.inner(this.tools, call.runId);
    const key = `${call.toolUseId}#${call.argsHash}`;
    const existing = calls.get(key);
    if (existing) return { call: this.read(ToolCallRecord, "tool call", existing), created: false };
    const item: ToolCall = {
      ...call,
      schemaVersion: RECORD_VERSIONS["tool call"],
      createdAt: this.iso(),
      ...(audit.length ? { audit: this.stamp(audit) } : {}),
    };
    calls.set(key, structuredClone(item));
    return { call: item, created: true };
  }

  // ---- approvals --------------------------------------------------------------------------

  async putApproval(
    approval: Omit<Approval, "schemaVersion" | "createdAt">,
  ): Promise<{ approval: Approval; created: boolean }> {
    this.count("putApproval");
    const existing = this.approvals.get(approval.approvalId);
    if (existing) return { approval: this.read(ApprovalRecord, "approval", existing), created: false };
    const item: Approval = { ...approval, schemaVersion: RECORD_VERSIONS.approval, createdAt: this.iso() };
    this.approvals.set(approval.approvalId, structuredClone(item));
    return { approval: item, created: true };
  }

  async getApproval(approvalId: string): Promise<Approval | undefined> {
    this.count("getApproval");
    const a = this.approvals.get(approvalId);
    return a ? this.read(ApprovalRecord, "approval", a) : undefined;
  }

  async getApprovals(approvalIds: readonly string[]): Promise<Approval[]> {
    this.count("getApprovals");
    return [...new Set(approvalIds)].flatMap((id) => {
      const a = this.approvals.get(id);
      return a ? [this.read(ApprovalRecord, "approval", a)] : [];
    });
  }

  async setApprovalToken(approvalId: string, taskToken: string, emailedTo?: string[]): Promise<void> {
    this.count("setApprovalToken");
    const a = this.approvals.get(approvalId);
    if (!a) throw new Error(`approval ${approvalId}: token for a missing approval`);
    a.taskToken = taskToken;
    if (emailedTo) a.emailedTo = [...emailedTo];
  }

  async decideApproval(
    approvalId: string,
    decision: Exclude<ApprovalStatus, "pending">,
    by: string,
    comment: string | undefined,
    nonce?: string,
  ): Promise<boolean> {
    this.count("decideApproval");
    const a = this.approvals.get(approvalId);
    if (a?.status !== "pending") return false;
    if (nonce !== undefined && a.usedNonces.includes(nonce)) return false;
    Object.assign(a, { status: decision, decidedBy: by, decidedAt: this.iso() });
    if (comment !== undefined) a.comment = comment;
    if (nonce !== undefined) a.usedNonces = [...a.usedNonces, nonce];
    return true;
  }

  async listApprovals(status?: ApprovalStatus): Promise<Approval[]> {
    this.count("listApprovals");
    const statuses: readonly ApprovalStatus[] = status ? [status] : ApprovalStatusEnum.options;
    return [...this.approvals.values()]
      .filter((a) => statuses.includes(a.status))
      .map((a) => this.read(ApprovalRecord, "approval", a))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  // ---- who submitted a run's document ------------------------------------------------------

  private readonly submitters = new Map<string, Set<string>>();

  async recordSubmitter(runId: string, principal: string): Promise<void> {
    this.count("recordSubmitter");
    this.submitters.set(runId, new Set([...(this.submitters.get(runId) ?? []), principal]));
  }

  async getSubmitters(runId: string): Promise<string[]> {
    this.count("getSubmitters");
    return [...(this.submitters.get(runId) ?? [])];
  }

  // ---- saved orders -------------------------------------------------------------------------

  async getOrder(customer: string, poNumber: string): Promise<Order | undefined> {
    this.count("getOrder");
    const o = this.orders.get(`${customer}#${foldPoNumber(poNumber)}`);
    return o ? this.read(OrderRecord, "order", o) : undefined;
  }

  async claimOrder(
    order: Omit<Order, "schemaVersion" | "createdAt" | "state">,
  ): Promise<{ order: Order; created: boolean }> {
    this.count("claimOrder");
    const key = `${order.customer}#${foldPoNumber(order.poNumber)}`;
    const existing = this.orders.get(key);
    if (existing) return { order: this.read(OrderRecord, "order", existing), created: false };
    const item: Order = { ...order, state: "writing", schemaVersion: RECORD_VERSIONS.order, createdAt: this.iso() };
    this.orders.set(key, structuredClone(item));
    return { order: item, created: true };
  }

  async completeOrder(customer: string, poNumber: string, idempotencyKey: string): Promise<void> {
    this.count("completeOrder");
    const o = this.orders.get(`${customer}#${foldPoNumber(poNumber)}`);
    if (!o || o.idempotencyKey !== idempotencyKey) {
      throw Object.assign(new Error("The conditional request failed"), { name: "ConditionalCheckFailedException" });
    }
    o.state = "written";
  }

  async takeOverOrder(order: Order, runId: string, idempotencyKey: string): Promise<boolean> {
    this.count("takeOverOrder");
    const o = this.orders.get(`${order.customer}#${foldPoNumber(order.poNumber)}`);
    if (!o || o.idempotencyKey !== order.idempotencyKey || o.state !== "writing") return false;
    Object.assign(o, { runId, idempotencyKey });
    return true;
  }

  async releaseOrder(customer: string, poNumber: string, idempotencyKey: string): Promise<void> {
    this.count("releaseOrder");
    const key = `${customer}#${foldPoNumber(poNumber)}`;
    const o = this.orders.get(key);
    if (o && o.idempotencyKey === idempotencyKey && o.state === "writing") this.orders.delete(key);
  }

  // ---- PO artifacts -------------------------------------------------------------------------

  async getArtifacts(runId: string): Promise<Artifact[]> {
    this.count("getArtifacts");
    return [...this.inner(this.artifacts, runId).values()].map((a) => this.read(ArtifactRecord, "artifact", a));
  }

  async getArtifact(runId: string, artifactId: string, version: number): Promise<Artifact | undefined> {
    this.count("getArtifact");
    const a = this.inner(this.artifacts, runId).get(`${artifactId}#${version}`);
    return a ? this.read(ArtifactRecord, "artifact", a) : undefined;
  }

  async putArtifact(
    artifact: Omit<Artifact, "schemaVersion" | "createdAt">,
  ): Promise<{ artifact: Artifact; created: boolean }> {
    this.count("putArtifact");
    const all = this.inner(this.artifacts, artifact.runId);
    const key = `${artifact.artifactId}#${artifact.version}`;
    const existing = all.get(key);
    if (existing) return { artifact: this.read(ArtifactRecord, "artifact", existing), created: false };
    const item: Artifact = { ...artifact, schemaVersion: SCHEMA_VERSION, createdAt: this.iso() };
    all.set(key, structuredClone(item));
    return { artifact: item, created: true };
  }

  async setArtifactValidation(
    runId: string,
    artifactId: string,
    version: number,
    validation: { errors: number; warnings: number },
  ): Promise<void> {
    this.count("setArtifactValidation");
    const a = this.inner(this.artifacts, runId).get(`${artifactId}#${version}`);
    if (!a) throw new Error(`artifact ${artifactId} v${version}: validation of a missing version`);
    a.validation = { ...validation, at: this.iso() };
  }

  // ---- audit ------------------------------------------------------------------------------

  async audit(runId: string, actor: string, action: string, detail: Record<string, unknown>): Promise<void> {
    this.count("audit");
    const entry: Audit = { schemaVersion: SCHEMA_VERSION, runId, at: this.iso(), actor, action, detail };
    this.audits.set(runId, [...(this.audits.get(runId) ?? []), structuredClone(entry)]);
  }

  async getAudit(runId: string): Promise<Audit[]> {
    this.count("getAudit");
    const embedded = [
      ...(this.runs.get(runId)?.audit ?? []),
      ...[...this.inner(this.turns, runId).values()].flatMap((t) => t.audit ?? []),
      ...[...this.inner(this.tools, runId).values()].flatMap((c) => c.audit ?? []),
    ].map((l): Audit => ({ schemaVersion: SCHEMA_VERSION, runId, ...l }));
    const all = [...(this.audits.get(runId) ?? []), ...embedded].map((a) => this.read(AuditRecord, "audit", a));
    return all
      .map((a, i) => ({ a, i }))
      .sort((x, y) => x.a.at.localeCompare(y.a.at) || x.i - y.i)
      .map((x) => x.a);
  }
}

/** Stored records by kind, raw (any version): what `MemoryLedger.seed` loads. */
export interface LedgerDump {
  runs?: Record<string, unknown>[];
  turns?: Record<string, unknown>[];
  toolCalls?: Record<string, unknown>[];
  artifacts?: Record<string, unknown>[];
  approvals?: Record<string, unknown>[];
  audit?: Record<string, unknown>[];
  orders?: Record<string, unknown>[];
}

function addInto(counters: Counters, delta: Partial<Counters>): void {
  for (const [k, v] of Object.entries(delta) as [keyof Counters, number | undefined][]) {
    if (v) counters[k] = (counters[k] ?? 0) + v;
  }
}
