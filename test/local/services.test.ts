import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CopyObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  S3Client,
} from "@aws-sdk/client-s3";
import { SESv2Client, SendEmailCommand } from "@aws-sdk/client-sesv2";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type LocalServices, type ObjectCreatedEvent, startServices } from "../../local/services.js";

const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const region = "us-east-1";

let dataDir: string;
let running: LocalServices[] = [];
let clients: { destroy(): void }[] = [];

async function start(): Promise<LocalServices> {
  const services = await startServices({ dataDir, buckets: ["intake", "results"] });
  running.push(services);
  return services;
}

function client<T extends { destroy(): void }>(made: T): T {
  clients.push(made);
  return made;
}

const s3Client = (s: LocalServices) =>
  client(new S3Client({ endpoint: s.s3Endpoint, region, credentials, forcePathStyle: true }));
const dynamoClient = (s: LocalServices) =>
  client(new DynamoDBClient({ endpoint: s.dynamodbEndpoint, region, credentials }));

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "po-agent-services-"));
});

afterEach(async () => {
  for (const made of clients) made.destroy();
  clients = [];
  await Promise.all(running.map((s) => s.close()));
  running = [];
  await rm(dataDir, { recursive: true, force: true });
});

describe("startServices", () => {
  it("refuses what a web page could send to the SDK-only emulators: a cross-site ledger write or S3 form upload", async () => {
    // Prepare: the ledger table and the request a cross-site page made (dynalite and s3rver grant CORS to any origin)
    const services = await start();
    const dynamo = dynamoClient(services);
    await dynamo.send(
      new CreateTableCommand({
        TableName: "ledger",
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    const put = JSON.stringify({ TableName: "ledger", Item: { pk: { S: "APPROVAL#x" }, status: { S: "approved" } } });
    const form = new FormData();
    form.set("key", "processed/FORGED.json");
    form.set("file", "{}");

    // Act
    const ledgerWrite = await fetch(`${services.dynamodbEndpoint}/?X-Amz-Signature=00`, {
      method: "POST",
      headers: {
        origin: "http://localhost:9999",
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "DynamoDB_20120810.PutItem",
      },
      body: put,
    });
    const preflight = await fetch(services.dynamodbEndpoint, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example" },
    });
    const upload = await fetch(`${services.s3Endpoint}/intake`, {
      method: "POST",
      headers: { "sec-fetch-mode": "no-cors", "sec-fetch-site": "cross-site" },
      body: form,
    });

    // Assess: refused, and nothing was written (the SDK still works)
    expect([ledgerWrite.status, preflight.status, upload.status]).toEqual([403, 403, 403]);
    const item = await dynamo.send(new GetItemCommand({ TableName: "ledger", Key: { pk: { S: "APPROVAL#x" } } }));
    expect(item.Item).toBeUndefined();
    await expect(
      s3Client(services).send(new GetObjectCommand({ Bucket: "intake", Key: "processed/FORGED.json" })),
    ).rejects.toThrow();
  });

  it("binds every service to loopback on a free port", async () => {
    // Act
    const services = await start();

    // Assess
    for (const endpoint of [services.s3Endpoint, services.dynamodbEndpoint, services.sesEndpoint]) {
      expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    }
    expect(new Set([services.s3Endpoint, services.dynamodbEndpoint, services.sesEndpoint]).size).toBe(3);
  });

  it("stores S3 objects in the configured buckets and reports each created object", async () => {
    // Prepare
    const services = await start();
    const events: ObjectCreatedEvent[] = [];
    services.onObjectCreated((e) => events.push(e));
    const s3 = s3Client(services);

    // Act
    const put = await s3.send(new PutObjectCommand({ Bucket: "intake", Key: "acme/po 1.pdf", Body: "%PDF-1.4 hello" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "intake", Key: "acme/po 1.pdf" }));
    await s3.send(new CopyObjectCommand({ Bucket: "results", Key: "copy.pdf", CopySource: "intake/acme/po%201.pdf" }));

    // Assess
    expect(await got.Body?.transformToString()).toBe("%PDF-1.4 hello");
    expect(events).toEqual([
      { bucket: "intake", key: "acme/po 1.pdf", size: 14, eTag: put.ETag?.replaceAll('"', "") },
      { bucket: "results", key: "copy.pdf", size: 14 },
    ]);
  });

  it("pages ListObjectsV2 with continuation tokens without --openssl-legacy-provider", async () => {
    // Prepare
    const services = await start();
    const s3 = s3Client(services);
    const keys = ["k1", "k2", "k3", "k4", "k5"];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: "results", Key: key, Body: key }));

    // Act
    const pages: string[][] = [];
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket: "results" })) {
      pages.push((page.Contents ?? []).map((o) => o.Key ?? ""));
    }

    // Assess
    expect(pages).toEqual([["k1", "k2"], ["k3", "k4"], ["k5"]]);
  });

  it("keeps DynamoDB items and S3 objects across a restart on the same data directory", async () => {
    // Prepare
    const first = await start();
    const dynamo = dynamoClient(first);
    await dynamo.send(
      new CreateTableCommand({
        TableName: "Ledger",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    // As on AWS, a new table is CREATING for a moment; writes must wait for ACTIVE.
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 10, minDelay: 1 }, { TableName: "Ledger" });
    await dynamo.send(new PutItemCommand({ TableName: "Ledger", Item: { pk: { S: "run-1" }, turn: { N: "3" } } }));
    await s3Client(first).send(new PutObjectCommand({ Bucket: "intake", Key: "kept.txt", Body: "kept" }));
    for (const made of clients.splice(0)) made.destroy();
    await first.close();
    running = [];

    // Act
    const second = await start();
    const item = await dynamoClient(second).send(
      new GetItemCommand({ TableName: "Ledger", Key: { pk: { S: "run-1" } } }),
    );
    const object = await s3Client(second).send(new GetObjectCommand({ Bucket: "intake", Key: "kept.txt" }));

    // Assess
    expect(item.Item).toEqual({ pk: { S: "run-1" }, turn: { N: "3" } });
    expect(await object.Body?.transformToString()).toBe("kept");
  });

  it("accepts SESv2 SendEmail and shows the message at /store", async () => {
    // Prepare
    const services = await start();
    const ses = client(new SESv2Client({ endpoint: services.sesEndpoint, region, credentials }));
    const subject = `Approve PO ${Date.now()}`;

    // Act
    const sent = await ses.send(
      new SendEmailCommand({
        FromEmailAddress: "agent@acme.example",
        Destination: { ToAddresses: ["approver@acme.example"] },
        Content: { Simple: { Subject: { Data: subject }, Body: { Text: { Data: "Open the link to decide." } } } },
      }),
    );
    const store = (await (await fetch(`${services.sesEndpoint}/store`)).json()) as {
      emails: { messageId: string; subject: string; destination: { to: string[] }; body: { text?: string } }[];
    };

    // Assess
    const email = store.emails.find((e) => e.subject === subject);
    expect(email).toMatchObject({
      messageId: sent.MessageId,
      destination: { to: ["approver@acme.example"] },
      body: { text: "Open the link to decide." },
    });
  });
});
