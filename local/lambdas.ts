/**
 * The in-process "Lambdas" of the local runtime: each role of the state machine (from the
 * catalogue) calls the same core function its AWS handler calls, with the customer's wiring.
 */
import type { SFNClient } from "@aws-sdk/client-sfn";
import { z } from "zod/v3";
import {
  ApprovalClockInput,
  approvalClock,
  approvalLinks,
  RequestApprovalInput,
  type ResolvedApprovalDeps,
  requestApproval,
} from "../lambdas/shared/agent/approvals.js";
import { finalize, orchestrate, recordFailure, runTool } from "../lambdas/shared/agent/core.js";
import { ingestDocument, sfnChildStarter } from "../lambdas/shared/agent/fanout.js";
import { approverIndexOf } from "../lambdas/shared/approval/route.js";
import { laneOfRole, ROLE_OF_PLACEHOLDER } from "../lambdas/shared/catalogue.js";
import type { CustomerConfig } from "../lambdas/shared/config/schema.js";
import type { Ledger } from "../lambdas/shared/ledger/ledger.js";
import { Step, ToolCallRef } from "../lambdas/shared/steps.js";
import { laneCallInput } from "../lambdas/shared/tools/lane.js";
import type { FUNCTION_ROLES, RunEvent } from "./runtime.js";

/** What the in-process Lambdas need of the runtime. */
export interface LambdaHost {
  ledger: Ledger;
  sfn: SFNClient;
  customers: CustomerConfig[];
  customer(name: string): CustomerConfig;
  customerForBucket(bucket: string): CustomerConfig | undefined;
  deps(customer: CustomerConfig): ResolvedApprovalDeps;
  /** Runs whose approval request was sent and whose execution now waits on a task token. */
  parked: Set<string>;
  onEvent?: (event: RunEvent) => void;
}

/** One Lambda task of the state machine, run in this process. */
export async function invokeLambda(
  host: LambdaHost,
  role: keyof typeof FUNCTION_ROLES,
  payload: unknown,
): Promise<unknown> {
  const p = (payload ?? {}) as Record<string, unknown>;
  const customerOfRun = async (runId: string) => host.customer((await host.ledger.requireRun(runId)).customer);
  switch (role) {
    case "IngestFunctionArn": {
      const input = z
        .object({
          bucket: z.string(),
          key: z.string(),
          versionId: z.string().optional(),
          executionId: z.string(),
          stateMachineArn: z.string().optional(),
        })
        .parse(p);
      const customer = host.customerForBucket(input.bucket);
      if (!customer) throw new Error(`no customer owns bucket ${input.bucket}`);
      // Children of a multi-PO document are started through the (local) Step Functions API, as in AWS.
      return ingestDocument({ ...host.deps(customer), startChild: sfnChildStarter(host.sfn) }, input);
    }
    case "OrchestrateFunctionArn": {
      const input = z.object({ runId: z.string() }).parse(p);
      host.parked.delete(input.runId);
      return orchestrate(host.deps(await customerOfRun(input.runId)), input);
    }
    case "ExtractFunctionArn":
    case "ValidateFunctionArn":
    case "TransformFunctionArn":
    case "SaveFunctionArn":
    case "McpToolFunctionArn": {
      // As in AWS, a lane's function accepts only its lane's tools (tools/lane.ts).
      const lane = laneOfRole(ROLE_OF_PLACEHOLDER[role]);
      const input = (
        lane && lane !== "mcp" ? laneCallInput(lane) : z.object({ runId: z.string(), call: ToolCallRef })
      ).parse(p);
      return runTool(host.deps(await customerOfRun(input.runId)), input);
    }
    case "RequestApprovalFunctionArn": {
      const input = RequestApprovalInput.parse(p);
      const deps = host.deps(await customerOfRun(input.runId));
      const result = await requestApproval(deps, input);
      await announceApproval(host, deps, input.runId, input.approvalId, input.stage);
      host.parked.add(input.runId);
      return result;
    }
    case "ApprovalTimeoutFunctionArn": {
      const input = ApprovalClockInput.parse(p);
      return approvalClock(host.deps(await customerOfRun(input.runId)), input);
    }
    case "FinalizeFunctionArn": {
      const input = z.object({ runId: z.string(), step: Step }).parse(p);
      return finalize(host.deps(await customerOfRun(input.runId)), input);
    }
    case "RecordFailureFunctionArn": {
      const state = (p.state ?? {}) as { run?: { runId?: string }; detail?: { bucket?: { name?: string } } };
      const customer = state.run?.runId
        ? await customerOfRun(state.run.runId).catch(() => undefined)
        : host.customerForBucket(state.detail?.bucket?.name ?? "");
      return recordFailure(host.deps(customer ?? (host.customers[0] as CustomerConfig)), { state: p.state });
    }
  }
}

/** The awaiting_approval event: the links the approver got by email (printed by `po-agent start`). */
async function announceApproval(
  host: LambdaHost,
  deps: ResolvedApprovalDeps,
  runId: string,
  approvalId: string,
  stage: number,
): Promise<void> {
  const approval = await host.ledger.getApproval(approvalId);
  if (approval?.status !== "pending") return;
  const approverId = approval.approvers[approverIndexOf(stage, approval.approvers.length)] ?? "";
  const links = approvalLinks(deps, approval, approverId);
  host.onEvent?.({
    type: "awaiting_approval",
    runId,
    approvalId,
    approveUrl: links.approveUrl,
    rejectUrl: links.rejectUrl,
    approver: deps.customer.approvers.find((a) => a.id === approverId)?.email ?? approverId,
  });
}
