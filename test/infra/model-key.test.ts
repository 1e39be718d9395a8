import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { REFERENCE_MODEL } from "../../lambdas/shared/constants.js";
import { MODEL_KEY_PLACEHOLDER, NO_KEY_NOTE, resolveApiKey } from "../../lambdas/shared/model/select.js";
import { customerConfig } from "./helpers.js";

const ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:model-key-AbCdEf";

describe("the deployed model key", () => {
  const secrets = mockClient(SecretsManagerClient);
  let stored = MODEL_KEY_PLACEHOLDER;

  beforeAll(() => {
    // The Lambda environment of Orchestrate/Extract, with the bundled customer.json.
    const root = mkdtempSync(join(tmpdir(), "po-agent-task-"));
    writeFileSync(join(root, "customer.json"), JSON.stringify(customerConfig("acme")));
    for (const [k, v] of Object.entries({
      LAMBDA_TASK_ROOT: root,
      LEDGER_TABLE: "t",
      DOCUMENT_BUCKET: "b",
      CUSTOMER: "acme",
      AWS_REGION: "us-east-1",
      MODEL_API_KEY_SECRET_ARN: ARN,
      ANTHROPIC_API_KEY: "",
      POWERTOOLS_LOG_LEVEL: "CRITICAL",
    }))
      vi.stubEnv(k, v);
    secrets.on(GetSecretValueCommand, { SecretId: ARN }).callsFake(() => ({ SecretString: stored }));
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    vi.useRealTimers();
    secrets.restore();
  });

  it("reads the placeholder as 'no key configured'", async () => {
    expect(await resolveApiKey({ MODEL_API_KEY_SECRET_ARN: ARN }, async () => MODEL_KEY_PLACEHOLDER)).toBeUndefined();
    expect(await resolveApiKey({ MODEL_API_KEY_SECRET_ARN: ARN }, async () => "sk-ant-real")).toBe("sk-ant-real");
  });

  it("runs the reference model until the key is set, then Claude within a minute, without a redeploy", async () => {
    vi.useFakeTimers({ now: new Date("2026-12-01T10:00:00Z"), toFake: ["Date"] });
    const { modelFor } = await import("../../lambdas/shared/aws/model.js");

    const before = await modelFor();
    expect(before.modelId).toBe(REFERENCE_MODEL);
    expect(before.note).toBe(NO_KEY_NOTE);

    stored = "sk-ant-api03-real-key";
    vi.setSystemTime(new Date("2026-12-01T10:00:30Z"));
    expect((await modelFor()).client.provider).toBe("reference"); // still cached: one read a minute at most
    vi.setSystemTime(new Date("2026-12-01T10:01:01Z"));
    const after = await modelFor();

    expect(after.client.provider).toBe("anthropic");
    expect(after.modelId).toBe("claude-sonnet-5");
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });
});
