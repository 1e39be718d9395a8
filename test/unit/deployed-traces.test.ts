import { describe, expect, it } from "vitest";
import type { AwsCall } from "../../scripts/deployed/recorder.js";
import { checkTraces, type EmittedSubsegment, type TracedInvocation } from "../../scripts/deployed/traces.js";

/**
 * check:deployed's trace check (scripts/deployed/traces.ts) on hand-made documents: what it must refuse for
 * the Function URL bundles, whose invocations no execution makes, so that their handler subsegment is
 * required by name and a function left unsampled is reported rather than passed.
 */
const ROOT = "1-6756a1b2-0123456789abcdef01234567";
const PARENT = "53995c3f42cd8ad8";
const HANDLER_ID = "1111111111111111";
const CALL_ID = "2222222222222222";

const invocation = (over: Partial<TracedInvocation> = {}): TracedInvocation => ({
  label: "acme/approval-callback",
  root: ROOT,
  parent: PARENT,
  customer: "acme",
  subsegment: "## approval-callback",
  overlapped: false,
  ...over,
});

const doc = (over: Partial<EmittedSubsegment>): EmittedSubsegment => ({
  name: "## approval-callback",
  id: HANDLER_ID,
  trace_id: ROOT,
  parent_id: PARENT,
  type: "subsegment",
  start_time: 1,
  end_time: 2,
  annotations: { customer: "acme" },
  ...over,
});

const secretRead = (parent: string): AwsCall => ({
  fn: "acme.approval-callback",
  service: "secretsmanager",
  action: "secretsmanager:GetSecretValue",
  resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:signing",
  traceHeader: `Root=${ROOT};Parent=${parent};Sampled=1`,
});

const awsDoc = (parent: string) =>
  doc({
    name: "SecretsManager",
    id: CALL_ID,
    parent_id: parent,
    namespace: "aws",
    aws: { operation: "GetSecretValue" },
  });

describe("checkTraces for the Function URL bundles", () => {
  it("passes a handler subsegment of the expected name parenting the call it made", () => {
    // Act
    const out = checkTraces(
      [invocation()],
      [doc({}), awsDoc(HANDLER_ID)],
      [secretRead(CALL_ID)],
      ["acme/approval-callback"],
    );

    // Assess
    expect(out).toEqual({ checked: 1, subsegments: 2, problems: [] });
  });

  it("refuses a call traced straight under the function's segment, as an unwrapped handler sends it", () => {
    // Act
    const out = checkTraces([invocation()], [awsDoc(PARENT)], [secretRead(CALL_ID)], ["acme/approval-callback"]);

    // Assess
    expect(out.problems).toEqual([
      `acme/approval-callback (trace ${ROOT}): 0 handler subsegments under the function segment, expected 1`,
    ]);
  });

  it("refuses a handler subsegment of another name", () => {
    // Act
    const out = checkTraces([invocation()], [doc({ name: "## probe" })], []);

    // Assess
    expect(out.problems).toEqual([
      `acme/approval-callback (trace ${ROOT}): handler subsegment "## probe", expected "## approval-callback"`,
    ]);
  });

  it("holds the handler subsegment to the fault the check expects: the failed request's, and no other", () => {
    // Act
    const missing = checkTraces([invocation({ fault: true })], [doc({})], []);
    const unexpected = checkTraces([invocation({ fault: false })], [doc({ fault: true })], []);
    const expected = checkTraces([invocation({ fault: true })], [doc({ fault: true })], []);

    // Assess
    expect(missing.problems).toEqual([
      `acme/approval-callback (trace ${ROOT}): handler subsegment not a fault, expected one`,
    ]);
    expect(unexpected.problems).toEqual([
      `acme/approval-callback (trace ${ROOT}): handler subsegment a fault, expected none`,
    ]);
    expect(expected.problems).toEqual([]);
  });

  it("reports a required function with no invocation checked: none sampled, or each beside another call", () => {
    // Act
    const none = checkTraces([], [], [], ["acme/mcp-server"]);
    const overlapped = checkTraces(
      [invocation({ label: "acme/mcp-server", overlapped: true })],
      [],
      [],
      ["acme/mcp-server"],
    );

    // Assess
    const problem =
      "acme/mcp-server: no sampled invocation that ran alone in its process, so its trace was not checked";
    expect(none.problems).toEqual([problem]);
    expect(overlapped).toEqual({ checked: 0, subsegments: 0, problems: [problem] });
  });
});
