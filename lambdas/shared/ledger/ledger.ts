import { createHash } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { SCHEMA_VERSION } from "../constants.js";
import { RecordTooLargeError, TransientError } from "../errors.js";
import {
  type ApprovalRecord as Approval,
  ApprovalRecord,
  type ApprovalStatus,
  ApprovalStatus as ApprovalStatusEnum,
  type ArtifactRecord as Artifact,
  ArtifactRecord,
  type AuditRecord as Audit,
  AuditRecord,
  type CounterDelta,
  type Counters,
  type EmbeddedAudit,
  type OrderRecord as Order,
  OrderRecord,
  parseRecord,
  RECORD_VERSIONS,
  type RunRecord as Run,
  RunRecord,
  RunStatus,
  type ToolCallRecord as ToolCall,
  ToolCallRecord,
  type TurnRecord as Turn,
  TurnRecord,
} from "./records.js";

/** Canonical JSON (sorted keys) so the same arguments always hash the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

export function sha256(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

const runKey = (runId: string) => ({ pk: `RUN#${runId}`, sk: "RUN" });
const turnSk = (turn: number) => `TURN#${String(turn).padStart(4, "0")}`;
const toolSk = (toolUseId: string, argsHash: string) => `TOOL#${toolUseId}#${argsHash}`;
const artifactSk = (artifactId: string, version: number) =>
  `ARTIFACT#${artifactId}#${String(version).padStart(4, "0")}`;
const approvalKey = (approvalId: string) => ({ pk: `APPROVAL#${approvalId}`, sk: "APPROVAL" });
/**
 * The form of a PO number the duplicate checks compare: NFKC (a full-width or compatibility-form
 * "ＡＣＭ－ＰＯ－１" is "ACM-PO-1"), trimmed, inner whitespace collapsed, upper case. Saved orders
 * are keyed by it, and a PO number a human rejected is remembered in it.
 */
export function foldPoNumber(poNumber: string): string {
  return poNumber.normalize("NFKC").trim().replace(/\s+/g, " ").toUpperCase();
}

/** A PO number comes from a document: long ones are hashed so the key stays under DynamoDB's 2 KB limit. */
const rawOrderKey = (customer: string, poNumber: string) => ({
  pk: `ORDER#${customer}#${poNumber.length <= 200 ? poNumber : `sha256:${sha256(poNumber)}`}`,
  sk: "ORDER",
});
const orderKey = (customer: string, poNumber: string) => rawOrderKey(customer, foldPoNumber(poNumber));

const TRANSIENT_DYNAMODB_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
]);

function classifyDynamoError(err: unknown): unknown {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (TRANSIENT_DYNAMODB_ERRORS.has(e.name ?? "") || status >= 500) {
    return new TransientError(`DynamoDB ${e.name ?? "error"} (HTTP ${status}) after the SDK's retries`, { cause: err });
  }
  return err;
}

/** DynamoDB's item size limit; the JSON size of an item is a little over its DynamoDB size. */
const MAX_ITEM_BYTES = 400 * 1024;

/** One line naming the limit instead of DynamoDB's ValidationException (or "UnknownError") mid-run. */
function refuseOversizedItem(item: Record<string, unknown>): void {
  const bytes = Buffer.byteLength(JSON.stringify(item));
  if (bytes <= MAX_ITEM_BYTES) return;
  const kind = String(item.sk ?? "record")
    .split("#")[0]
    ?.toLowerCase();
  throw new RecordTooLargeError(
    `the ${kind} record of ${String(item.pk ?? "").replace(/^RUN#/, "run ")} would be ${(bytes / 1024 / 1024).toFixed(1)} MB, over DynamoDB's 400 KB item limit: a PO this large cannot be kept in the ledger (split the order into smaller POs); the document is kept`,
  );
}

function isConditionalFailure(err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === "ConditionalCheckFailedException";
}

/**
 * The ledger's port: what the agent core, the approval paths and the local runtime use. Two
 * stores implement it: `DynamoLedger` (deployed and local, on dynalite) and `MemoryLedger`
 * (`ledger/memory.ts`, the loop's unit tests). `new Ledger(client, table)` is the DynamoDB store.
 */
export type Ledger = { [K in keyof DynamoLedger]: DynamoLedger[K] };

/**
 * The durability ledger: one DynamoDB table holding runs, model turns, tool calls, approvals,
 * saved orders and the audit log. Writes of results are conditional (`attribute_not_exists`),
 * so a retry that lost a race reads the winner's record instead of writing twice.
 */
export class DynamoLedger {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    // The SDK has already retried throttling and 5xx when an error gets here; what is left becomes a
    // TransientError so the state machine's Retry decides (no third retry layer in this class).
    this.doc.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          throw classifyDynamoError(err);
        }
      },
      // The document client shares the base client's stack: one Ledger per invocation must not stack copies.
      { step: "initialize", name: "poAgentTransientErrors", override: true },
    );
  }

  private iso(): string {
    return this.now().toISOString();
  }

  private stamp(lines: readonly AuditLine[]): EmbeddedAudit[] {
    const at = this.iso();
    return lines.map((l) => ({ at: l.at ?? at, actor: l.actor, action: l.action, detail: l.detail }));
  }

  /**
   * The run's state in one query: the run record, its turns, tool calls and PO versions (the run's
   * partition without its audit lines). Every agent step starts here instead of reading each kind apart.
   */
  async loadRunState(runId: string): Promise<RunState | undefined> {
    const items = await this.queryAll({
      KeyConditionExpression: "pk = :pk",
      // Audit records are the only items with an `action`; the key itself cannot be filtered on.
      FilterExpression: "attribute_not_exists(#action)",
      ExpressionAttributeNames: { "#action": "action" },
      ExpressionAttributeValues: { ":pk": `RUN#${runId}` },
      ConsistentRead: true,
    });
    let run: Run | undefined;
    const state: Omit<RunState, "run"> = { turns: [], toolCalls: [], artifacts: [] };
    for (const item of items) {
      const sk = String(item.sk);
      if (sk === "RUN") run = parseRecord(RunRecord, "run", stripKeys(item));
      else if (sk.startsWith("TURN#")) state.turns.push(parseRecord(TurnRecord, "turn", stripKeys(item)));
      else if (sk.startsWith("TOOL#")) state.toolCalls.push(parseRecord(ToolCallRecord, "tool call", stripKeys(item)));
      else if (sk.startsWith("ARTIFACT#"))
        state.artifacts.push(parseRecord(ArtifactRecord, "artifact", stripKeys(item)));
    }
    return run ? { run, ...state } : undefined;
  }

  /**
   * Adds the counter deltas of step records not yet counted to the run's counters, in one
   * conditional update that also records their keys: a step is counted once however often this
   * runs (a retry, a crash between a step's write and this one). `set` and `decided` ride along.
   */
  async foldRun(runId: string, fold: RunFold): Promise<void> {
    let steps = [...fold.steps];
    let turn = fold.turn;
    for (let attempt = 0; ; attempt++) {
      const sets = ["updatedAt = :updatedAt"];
      const adds: string[] = [];
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = { ":updatedAt": this.iso() };
      const conditions = ["attribute_exists(pk)"];
      if (steps.length) {
        names["#folded"] = "folded";
        values[":empty"] = [];
        values[":keys"] = steps.map((s) => s.key);
        sets.push("#folded = list_append(if_not_exists(#folded, :empty), :keys)");
        const sum: Record<string, number> = {};
        steps.forEach((s, i) => {
          values[`:k${i}`] = s.key;
          conditions.push(`NOT contains(#folded, :k${i})`);
          for (const [k, v] of Object.entries(s.delta ?? {})) if (v) sum[k] = (sum[k] ?? 0) + v;
        });
        names["#c"] = "counters";
        for (const [k, v] of Object.entries(sum)) {
          names[`#${k}`] = k;
          values[`:${k}`] = v;
          adds.push(`#c.#${k} :${k}`);
        }
      }
      if (turn !== undefined) {
        names["#turn"] = "turn";
        values[":turn"] = turn;
        sets.push("#turn = :turn");
        conditions.push("#turn <= :turn");
      }
      if (fold.poNumber !== undefined) {
        values[":po"] = fold.poNumber;
        sets.push("poNumber = if_not_exists(poNumber, :po)");
      }
      if (fold.decided?.length) {
        names["#decided"] = "decided";
        values[":none"] = [];
        values[":decided"] = fold.decided;
        sets.push("#decided = list_append(if_not_exists(#decided, :none), :decided)");
      }
      if (sets.length === 1) return;
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: runKey(runId),
            UpdateExpression: `SET ${sets.join(", ")}${adds.length ? ` ADD ${adds.join(", ")}` : ""}`,
            ConditionExpression: conditions.join(" AND "),
            ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
            ExpressionAttributeValues: values,
          }),
        );
        return;
      } catch (err) {
        if (!isConditionalFailure(err) || attempt >= 3) throw err;
        // Another attempt folded some of these steps (or moved the turn on): fold what is left.
        const run = await this.requireRun(runId);
        const done = new Set(run.folded ?? []);
        steps = steps.filter((s) => !done.has(s.key));
        if (turn !== undefined && run.turn > turn) turn = undefined;
      }
    }
  }

  /** Approvals by id in one round trip (missing ids are absent from the answer). */
  async getApprovals(approvalIds: readonly string[]): Promise<Approval[]> {
    const out: Approval[] = [];
    let keys: Record<string, unknown>[] = [...new Set(approvalIds)].map((id) => approvalKey(id));
    for (let i = 0; keys.length > 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Math.min(1_000, 25 * 2 ** i)));
      if (i > 8) throw new TransientError(`DynamoDB left ${keys.length} approvals unread after ${i} attempts`);
      const chunk = keys.slice(0, 100);
      const res = await this.doc.send(
        new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: chunk, ConsistentRead: true } } }),
      );
      for (const item of res.Responses?.[this.tableName] ?? []) {
        out.push(parseRecord(ApprovalRecord, "approval", stripKeys(item)));
      }
      keys = [
        ...((res.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined) ?? []),
        ...keys.slice(100),
      ];
    }
    return out;
  }

  /**
   * Writes `item` only if no item has its key; otherwise returns the stored one. The one way every
   * result enters the ledger, so a retry reads the first writer's record instead of writing again.
   */
  private async putOnce<T>(
    item: Record<string, unknown>,
    stored: T,
    readExisting: () => Promise<T | undefined>,
  ): Promise<{ value: T; created: boolean }> {
    refuseOversizedItem(item);
    try {
      await this.doc.send(
        new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" }),
      );
      return { value: stored, created: true };
    } catch (err) {
      if (!isConditionalFailure(err)) throw err;
      const existing = await readExisting();
      if (existing === undefined) throw err;
      return { value: existing, created: false };
    }
  }

  // ---- runs -------------------------------------------------------------------------------

  /**
   * Creates the run if absent; returns the stored run either way (`created` tells which). `audit`
   * lines (the run's opening) are written with the record, so they exist exactly when it does.
   */
  async openRun(
    run: Omit<Run, "schemaVersion" | "createdAt" | "updatedAt" | "audit">,
    audit: readonly AuditLine[] = [],
  ): Promise<{ run: Run; created: boolean }> {
    const at = this.iso();
    const item: Run = {
      ...run,
      schemaVersion: SCHEMA_VERSION,
      createdAt: at,
      updatedAt: at,
      ...(audit.length ? { audit: this.stamp(audit) } : {}),
    };
    const { value, created } = await this.putOnce({ ...runKey(run.runId), ...item, ...statusIndex(item) }, item, () =>
      this.getRun(run.runId),
    );
    return { run: value, created };
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: runKey(runId), ConsistentRead: true }),
    );
    return res.Item ? parseRecord(RunRecord, "run", stripKeys(res.Item)) : undefined;
  }

  async requireRun(runId: string): Promise<Run> {
    const run = await this.getRun(runId);
    if (!run) throw new Error(`run ${runId} not found in the ledger`);
    return run;
  }

  /** Sets fields on the run record (status changes also move the run in the status index). */
  async updateRun(
    runId: string,
    fields: Partial<
      Pick<
        Run,
        | "status"
        | "reason"
        | "poNumber"
        | "pendingApprovalId"
        | "finishedAt"
        | "durationMs"
        | "modelProvider"
        | "modelId"
        | "turn"
        | "executionId"
        | "cost"
        | "children"
      >
    >,
    options: {
      onlyIfStatusIn?: RunStatus[];
      /** A decided approval to keep on the run (see `RunRecord.decided`). */
      decided?: Approval;
    } = {},
  ): Promise<boolean> {
    const sets: string[] = ["updatedAt = :updatedAt"];
    const values: Record<string, unknown> = { ":updatedAt": this.iso() };
    const names: Record<string, string> = {};
    if (options.decided) {
      names["#decided"] = "decided";
      values[":none"] = [];
      values[":decided"] = [options.decided];
      sets.push("#decided = list_append(if_not_exists(#decided, :none), :decided)");
    }
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      names[`#${k}`] = k;
      values[`:${k}`] = v;
      sets.push(`#${k} = :${k}`);
    }
    if (fields.status) {
      names["#gsi1pk"] = "gsi1pk";
      values[":gsi1pk"] = `RUNSTATUS#${fields.status}`;
      sets.push("#gsi1pk = :gsi1pk");
    }
    let condition = "attribute_exists(pk)";
    if (options.onlyIfStatusIn) {
      names["#status"] = "status";
      const keys = options.onlyIfStatusIn.map((s, i) => {
        values[`:allowed${i}`] = s;
        return `:allowed${i}`;
      });
      condition += ` AND #status IN (${keys.join(", ")})`;
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: runKey(runId),
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalFailure(err) && options.onlyIfStatusIn) return false;
      throw err;
    }
  }

  /** Atomically adds to the run's counters (model calls, tokens, dollars...). */
  async addCounters(runId: string, delta: Partial<Counters>): Promise<void> {
    const parts: string[] = [];
    const names: Record<string, string> = { "#c": "counters" };
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(delta)) {
      if (!v) continue;
      names[`#${k}`] = k;
      values[`:${k}`] = v;
      parts.push(`#c.#${k} :${k}`);
    }
    if (parts.length === 0) return;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: runKey(runId),
        UpdateExpression: `ADD ${parts.join(", ")}`,
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  /** Runs of every status (or of the given ones), oldest first, through the status index (no table scan). */
  async listRuns(statuses: readonly RunStatus[] = RunStatus.options): Promise<Run[]> {
    const items = (await Promise.all(statuses.map((st) => this.queryIndex(`RUNSTATUS#${st}`)))).flat();
    return items
      .map((i) => parseRecord(RunRecord, "run", stripKeys(i)))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Forgets a run's model turns and tool calls (not its approvals, orders or audit). Only the
   * durability benchmark's "no ledger" baseline uses it, to restart runs from the beginning.
   */
  async resetRun(runId: string): Promise<void> {
    const items = [
      ...(await this.queryPrefix(`RUN#${runId}`, "TURN#")),
      ...(await this.queryPrefix(`RUN#${runId}`, "TOOL#")),
    ];
    for (const item of items) {
      await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: item.pk, sk: item.sk } }));
    }
    await this.updateRun(runId, { turn: 0, status: "running" }, { onlyIfStatusIn: ["running"] });
    // The forgotten steps are stored again under the same keys: they count again, as paid again.
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: runKey(runId),
        UpdateExpression: "REMOVE folded",
        ConditionExpression: "attribute_exists(pk)",
      }),
    );
  }

  // ---- turns ------------------------------------------------------------------------------

  async getTurns(runId: string): Promise<Turn[]> {
    const items = await this.queryPrefix(`RUN#${runId}`, "TURN#");
    return items.map((i) => parseRecord(TurnRecord, "turn", stripKeys(i)));
  }

  /**
   * Stores a model turn once, with its counter delta and audit lines. Returns the stored turn: ours,
   * or the one a concurrent attempt wrote first. The run's counters take the delta in `foldRun`.
   */
  async putTurn(
    turn: Omit<Turn, "schemaVersion" | "createdAt" | "audit">,
    audit: readonly AuditLine[] = [],
  ): Promise<{ turn: Turn; created: boolean }> {
    const item: Turn = {
      ...turn,
      schemaVersion: RECORD_VERSIONS.turn,
      createdAt: this.iso(),
      ...(audit.length ? { audit: this.stamp(audit) } : {}),
    };
    const key = { pk: `RUN#${turn.runId}`, sk: turnSk(turn.turn) };
    const { value, created } = await this.putOnce({ ...key, ...item }, item, async () => {
      const res = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
      return res.Item ? parseRecord(TurnRecord, "turn", stripKeys(res.Item)) : undefined;
    });
    return { turn: value, created };
  }

  // ---- tool calls -------------------------------------------------------------------------

  async getToolCall(runId: string, toolUseId: string, argsHash: string): Promise<ToolCall | undefined> {
    const res = await this.doc.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: `RUN#${runId}`, sk: toolSk(toolUseId, argsHash) },
        ConsistentRead: true,
      }),
    );
    return res.Item ? parseRecord(ToolCallRecord, "tool call", stripKeys(res.Item)) : undefined;
  }

  async getToolCalls(runId: string): Promise<ToolCall[]> {
    const items = await this.queryPrefix(`RUN#${runId}`, "TOOL#");
    return items.map((i) => parseRecord(ToolCallRecord, "tool call", stripKeys(i)));
  }

  /** Stores a tool call's result once, with its counter delta and audit lines (see `putTurn`). */
  async putToolCall(
    call: Omit<ToolCall, "schemaVersion" | "createdAt" | "audit">,
    audit: readonly AuditLine[] = [],
  ): Promise<{ call: ToolCall; created: boolean }> {
    const item: ToolCall = {
      ...call,
      schemaVersion: RECORD_VERSIONS["tool call"],
      createdAt: this.iso(),
      ...(audit.length ? { audit: this.stamp(audit) } : {}),
    };
    const { value, created } = await this.putOnce(
      { pk: `RUN#${call.runId}`, sk: toolSk(call.toolUseId, call.argsHash), ...item },
      item,
      () => this.getToolCall(call.runId, call.toolUseId, call.argsHash),
    );
    return { call: value, created };
  }

  // ---- approvals --------------------------------------------------------------------------

  async putApproval(
    approval: Omit<Approval, "schemaVersion" | "createdAt">,
  ): Promise<{ approval: Approval; created: boolean }> {
    const item: Approval = { ...approval, schemaVersion: RECORD_VERSIONS.approval, createdAt: this.iso() };
    const { value, created } = await this.putOnce(
      { ...approvalKey(approval.approvalId), ...item, gsi1pk: `APPROVAL#${item.status}`, gsi1sk: item.createdAt },
      item,
      () => this.getApproval(approval.approvalId),
    );
    return { approval: value, created };
  }

  async getApproval(approvalId: string): Promise<Approval | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: approvalKey(approvalId), ConsistentRead: true }),
    );
    return res.Item ? parseRecord(ApprovalRecord, "approval", stripKeys(res.Item)) : undefined;
  }

  async setApprovalToken(approvalId: string, taskToken: string, emailedTo?: string[]): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: approvalKey(approvalId),
        UpdateExpression: emailedTo ? "SET taskToken = :t, emailedTo = :e" : "SET taskToken = :t",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeValues: emailedTo ? { ":t": taskToken, ":e": emailedTo } : { ":t": taskToken },
      }),
    );
  }

  /**
   * Decides a pending approval exactly once. Returns false when it was already decided (a
   * reused link, a double click, a race with the timeout) or the nonce was already used.
   */
  async decideApproval(
    approvalId: string,
    decision: Exclude<ApprovalStatus, "pending">,
    by: string,
    comment: string | undefined,
    nonce?: string,
  ): Promise<boolean> {
    const values: Record<string, unknown> = {
      ":pending": "pending",
      ":status": decision,
      ":by": by,
      ":at": this.iso(),
      ":gsi": `APPROVAL#${decision}`,
    };
    let update = "SET #status = :status, decidedBy = :by, decidedAt = :at, gsi1pk = :gsi";
    let condition = "#status = :pending";
    if (comment !== undefined) {
      update += ", #comment = :comment";
      values[":comment"] = comment;
    }
    if (nonce !== undefined) {
      update += ", usedNonces = list_append(if_not_exists(usedNonces, :empty), :nonce)";
      values[":empty"] = [];
      values[":nonce"] = [nonce];
      values[":nonceValue"] = nonce;
      condition += " AND NOT contains(usedNonces, :nonceValue)";
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: approvalKey(approvalId),
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames:
            comment !== undefined ? { "#status": "status", "#comment": "comment" } : { "#status": "status" },
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalFailure(err)) return false;
      throw err;
    }
  }

  /** Approvals of one status (or all), oldest first, through the status index. */
  async listApprovals(status?: ApprovalStatus): Promise<Approval[]> {
    const statuses = status ? [status] : ApprovalStatusEnum.options;
    const items = (await Promise.all(statuses.map((st) => this.queryIndex(`APPROVAL#${st}`)))).flat();
    return items
      .map((i) => parseRecord(ApprovalRecord, "approval", stripKeys(i)))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  // ---- who submitted a run's document ------------------------------------------------------

  /**
   * Records an authenticated principal that submitted the run's document (MCP submit_document),
   * before the document is dropped, so it exists by the time an approval can be asked: a
   * submitter cannot approve its own PO. Kept in the run's partition (the run record may not exist yet).
   */
  async recordSubmitter(runId: string, principal: string): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: `RUN#${runId}`,
          sk: `SUBMITTER#${sha256(principal).slice(0, 32)}`,
          schemaVersion: SCHEMA_VERSION,
          runId,
          principal,
          at: this.iso(),
        },
      }),
    );
  }

  /** The principals that submitted the run's document. */
  async getSubmitters(runId: string): Promise<string[]> {
    const items = await this.queryPrefix(`RUN#${runId}`, "SUBMITTER#");
    return items.map((i) => String(i.principal));
  }

  // ---- saved orders (the save tool's side effect) -------------------------------------------

  async getOrder(customer: string, poNumber: string): Promise<Order | undefined> {
    const order = await this.getOrderAt(orderKey(customer, poNumber));
    // Orders saved before PO numbers were folded sit under the number as written.
    if (order || foldPoNumber(poNumber) === poNumber) return order;
    return this.getOrderAt(rawOrderKey(customer, poNumber));
  }

  private async getOrderAt(key: { pk: string; sk: string }): Promise<Order | undefined> {
    const res = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
    return res.Item ? parseRecord(OrderRecord, "order", stripKeys(res.Item)) : undefined;
  }

  /**
   * Claims a PO number for one idempotency key (state `writing`); a replay with the same key is not a
   * second claim. The caller writes the object, then `completeOrder`, or `releaseOrder` when the write failed.
   */
  async claimOrder(
    order: Omit<Order, "schemaVersion" | "createdAt" | "state">,
  ): Promise<{ order: Order; created: boolean }> {
    if (foldPoNumber(order.poNumber) !== order.poNumber) {
      const legacy = await this.getOrderAt(rawOrderKey(order.customer, order.poNumber));
      if (legacy) return { order: legacy, created: false };
    }
    const item: Order = { ...order, state: "writing", schemaVersion: RECORD_VERSIONS.order, createdAt: this.iso() };
    const { value, created } = await this.putOnce({ ...orderKey(order.customer, order.poNumber), ...item }, item, () =>
      this.getOrderAt(orderKey(order.customer, order.poNumber)),
    );
    return { order: value, created };
  }

  /** The object is written: the claim becomes the saved order (only for the key that claimed it). */
  async completeOrder(customer: string, poNumber: string, idempotencyKey: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: orderKey(customer, poNumber),
        UpdateExpression: "SET #state = :written",
        ConditionExpression: "idempotencyKey = :key",
        ExpressionAttributeNames: { "#state": "state" },
        ExpressionAttributeValues: { ":written": "written", ":key": idempotencyKey },
      }),
    );
  }

  /** Moves a `writing` claim of a failed run to another run; false when someone else moved it first. */
  async takeOverOrder(order: Order, runId: string, idempotencyKey: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: orderKey(order.customer, order.poNumber),
          UpdateExpression: "SET runId = :run, idempotencyKey = :key",
          ConditionExpression: "idempotencyKey = :old AND #state = :writing",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: {
            ":run": runId,
            ":key": idempotencyKey,
            ":old": order.idempotencyKey,
            ":writing": "writing",
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalFailure(err)) return false;
      throw err;
    }
  }

  /** The object write failed: the claim goes, so a corrected resend is not "already saved". */
  async releaseOrder(customer: string, poNumber: string, idempotencyKey: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: orderKey(customer, poNumber),
          ConditionExpression: "idempotencyKey = :key AND #state = :writing",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":key": idempotencyKey, ":writing": "writing" },
        }),
      );
    } catch (err) {
      if (!isConditionalFailure(err)) throw err;
    }
  }

  // ---- PO artifacts -------------------------------------------------------------------------

  /** Every version of every artifact of one run (the only place a tool may read a PO from). */
  async getArtifacts(runId: string): Promise<Artifact[]> {
    const items = await this.queryPrefix(`RUN#${runId}`, "ARTIFACT#");
    return items.map((i) => parseRecord(ArtifactRecord, "artifact", stripKeys(i)));
  }

  async getArtifact(runId: string, artifactId: string, version: number): Promise<Artifact | undefined> {
    const res = await this.doc.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: `RUN#${runId}`, sk: artifactSk(artifactId, version) },
        ConsistentRead: true,
      }),
    );
    return res.Item ? parseRecord(ArtifactRecord, "artifact", stripKeys(res.Item)) : undefined;
  }

  /** Stores one version once; a concurrent writer of the same version wins and its record is returned. */
  async putArtifact(
    artifact: Omit<Artifact, "schemaVersion" | "createdAt">,
  ): Promise<{ artifact: Artifact; created: boolean }> {
    const item: Artifact = { ...artifact, schemaVersion: SCHEMA_VERSION, createdAt: this.iso() };
    const { value, created } = await this.putOnce(
      { pk: `RUN#${artifact.runId}`, sk: artifactSk(artifact.artifactId, artifact.version), ...item },
      item,
      () => this.getArtifact(artifact.runId, artifact.artifactId, artifact.version),
    );
    return { artifact: value, created };
  }

  /** Records what validate found on one exact version (the only field of a version ever set later). */
  async setArtifactValidation(
    runId: string,
    artifactId: string,
    version: number,
    validation: { errors: number; warnings: number },
  ): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: `RUN#${runId}`, sk: artifactSk(artifactId, version) },
        UpdateExpression: "SET validation = :v",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeValues: { ":v": { ...validation, at: this.iso() } },
      }),
    );
  }

  // ---- audit ------------------------------------------------------------------------------

  /** Append-only: each entry gets a unique sort key and is never updated. */
  async audit(runId: string, actor: string, action: string, detail: Record<string, unknown>): Promise<void> {
    const at = this.iso();
    const item: Audit = { schemaVersion: SCHEMA_VERSION, runId, at, actor, action, detail };
    const sk = `AUDIT#${at}#${sha256(`${actor}${action}${canonicalJson(detail)}${Math.random()}`).slice(0, 8)}`;
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { pk: `RUN#${runId}`, sk, ...item },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
  }

  /** The run's audit log, oldest first: standalone lines and those stored with a step's record. */
  async getAudit(runId: string): Promise<Audit[]> {
    const items = await this.queryAll({
      KeyConditionExpression: "pk = :pk",
      ProjectionExpression: "sk, schemaVersion, runId, #at, actor, #action, detail, #audit",
      ExpressionAttributeNames: { "#at": "at", "#action": "action", "#audit": "audit" },
      ExpressionAttributeValues: { ":pk": `RUN#${runId}` },
      ConsistentRead: true,
    });
    const out: Audit[] = [];
    for (const item of items) {
      if (String(item.sk).startsWith("AUDIT#")) out.push(parseRecord(AuditRecord, "audit", stripKeys(item)));
      else if (Array.isArray(item.audit)) {
        for (const line of item.audit as EmbeddedAudit[]) out.push({ schemaVersion: SCHEMA_VERSION, runId, ...line });
      }
    }
    // Stable: lines of one step keep their order.
    return out
      .map((a, i) => ({ a, i }))
      .sort((x, y) => x.a.at.localeCompare(y.a.at) || x.i - y.i)
      .map((x) => x.a);
  }

  /** Runs of one status index partition (eventually consistent, like any GSI read). */
  private queryIndex(gsi1pk: string): Promise<Record<string, unknown>[]> {
    return this.queryAll({
      IndexName: "gsi1",
      KeyConditionExpression: "gsi1pk = :pk",
      ExpressionAttributeValues: { ":pk": gsi1pk },
    });
  }

  /** Items of one partition whose sort key starts with `prefix`, read consistently. */
  private queryPrefix(pk: string, prefix: string): Promise<Record<string, unknown>[]> {
    return this.queryAll({
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":pk": pk, ":prefix": prefix },
      ConsistentRead: true,
    });
  }

  /** Every page of a query. */
  private async queryAll(
    input: Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey">,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({ ...input, TableName: this.tableName, ExclusiveStartKey: start }),
      );
      items.push(...(res.Items ?? []));
      start = res.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

/** The DynamoDB store under the port's name, so `new Ledger(client, table)` reads as before. */
export const Ledger = DynamoLedger;

/** An audit line to store with a step's record (`at` defaults to the write's time). */
/** What `foldRun` adds to a run record: uncounted steps' deltas, and the fields that ride along. */
export interface RunFold {
  steps: readonly { key: string; delta?: CounterDelta }[];
  turn?: number;
  poNumber?: string;
  decided?: readonly Approval[];
}

export interface AuditLine {
  actor: string;
  action: string;
  detail: Record<string, unknown>;
  at?: string;
}

/** Everything an agent step reads about its run, from one query (see `Ledger.loadRunState`). */
export interface RunState {
  run: Run;
  turns: Turn[];
  toolCalls: ToolCall[];
  artifacts: Artifact[];
}

function statusIndex(run: Run): Record<string, string> {
  return { gsi1pk: `RUNSTATUS#${run.status}`, gsi1sk: run.createdAt };
}

function stripKeys(item: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!item) return item;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest;
}
