import type { S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DocumentStore, storedKeyOf } from "../../lambdas/shared/aws/documents.js";
import { loadCustomerFile } from "../../lambdas/shared/config/load.js";
import { CustomerConfig } from "../../lambdas/shared/config/schema.js";

/** How often the Anthropic SDK module was evaluated in this file (vi.mock's factory runs on first import). */
const sdkLoads = vi.hoisted(() => ({ count: 0, requests: [] as unknown[] }));

vi.mock("@anthropic-ai/sdk", () => {
  sdkLoads.count += 1;
  class APIError extends Error {
    status: number | undefined = undefined;
  }
  class APIConnectionError extends APIError {}
  class Anthropic {
    static APIError = APIError;
    static APIConnectionError = APIConnectionError;
    messages = {
      create: async (params: unknown) => {
        sdkLoads.requests.push(params);
        return {
          model: "m",
          content: [{ type: "text", text: "hi" }],
          stop_reason: "end_turn",
          usage: { input_tokens: 1, output_tokens: 1 },
        };
      },
    };
  }
  return { default: Anthropic, APIError, APIConnectionError };
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("cold start: work moved out of module init", () => {
  it("imports the Anthropic SDK on the first model request, not when the client is built", async () => {
    // Prepare: the module that wraps the SDK, imported (as every Orchestrate and Extract bundle does at init).
    const { AnthropicModelClient } = await import("../../lambdas/shared/model/anthropic.js");
    const client = new AnthropicModelClient({ apiKey: "sk-test" });
    expect(sdkLoads.count).toBe(0);

    // Act
    const request = { model: "m", system: "s", rules: "r", tools: [], messages: [], maxTokens: 10 };
    const answer = await client.create(request);
    await client.create(request);

    // Assess: loaded once, and the requests went through the SDK's client.
    expect(sdkLoads.count).toBe(1);
    expect(sdkLoads.requests).toHaveLength(2);
    expect(answer.stop_reason).toBe("end_turn");
  });

  it("checks a canonical time zone without building a formatter, and still accepts aliases and refuses nonsense", () => {
    const base = loadCustomerFile("customers/acme.yaml");
    const formatter = vi.spyOn(Intl, "DateTimeFormat");

    expect(CustomerConfig.safeParse({ ...base, timeZone: "America/Chicago" }).success).toBe(true);
    expect(formatter).not.toHaveBeenCalled();
    expect(CustomerConfig.safeParse({ ...base, timeZone: "US/Central" }).success).toBe(true);
    expect(CustomerConfig.safeParse({ ...base, timeZone: "Mars/Olympus" }).success).toBe(false);
    expect(formatter).toHaveBeenCalled();
  });

  it("creates the S3 client only when a document is first read or written", async () => {
    // Prepare: a client factory that counts its calls, and a client that answers like S3.
    const sent: string[] = [];
    const fake = {
      send: async (command: { constructor: { name: string } }) => {
        sent.push(command.constructor.name);
        if (command.constructor.name === "HeadObjectCommand") return { ContentLength: 2 };
        return { Body: { transformToByteArray: async () => new Uint8Array([104, 105]) } };
      },
    } as unknown as S3Client;
    const factory = vi.fn(async () => fake);
    const store = new DocumentStore(factory);
    expect(factory).not.toHaveBeenCalled();

    // Act
    const bytes = await store.get("b", "incoming/po.json");
    const key = await storedKeyOf(factory, "b", "incoming/plain.json");

    // Assess: the factory ran for the read (a plain key needs no request), and the read used the SDK's commands.
    expect(new TextDecoder().decode(bytes)).toBe("hi");
    expect(factory).toHaveBeenCalledTimes(1);
    expect(sent).toEqual(["HeadObjectCommand", "GetObjectCommand"]);
    expect(key).toBe("incoming/plain.json");
  });
});
