import { readFileSync } from "node:fs";
import type { AgentDeps } from "../../lambdas/shared/agent/deps.js";
import { DocumentStore } from "../../lambdas/shared/aws/documents.js";
import type { CustomerConfig } from "../../lambdas/shared/config/schema.js";
import { type LedgerDump, MemoryLedger } from "../../lambdas/shared/ledger/memory.js";
import { ReferenceModelClient } from "../../lambdas/shared/model/reference.js";
import { memoryS3 } from "../unit/memory-s3.js";

/** A ledger as an older build stored it (test/fixtures/ledger/), with the document its run read. */
export type LedgerFixture = LedgerDump & { document: { key: string; sample: string } };

/** Reads `test/fixtures/ledger/<path>`. */
export function loadLedgerFixture(path: string): LedgerFixture {
  return JSON.parse(readFileSync(new URL(`../fixtures/ledger/${path}`, import.meta.url), "utf8")) as LedgerFixture;
}

/**
 * The fixture's records in a memory ledger and its document in a memory bucket, with the agent's
 * dependencies on them (the offline reference model; `extra` adds or replaces dependencies).
 */
export function fixtureWorld(dump: LedgerFixture, customer: CustomerConfig, extra: Partial<AgentDeps> = {}) {
  const ledger = new MemoryLedger();
  ledger.seed(dump);
  const s3 = memoryS3();
  s3.objects.set(`acme-intake/${dump.document.key}`, readFileSync(dump.document.sample));
  const deps: AgentDeps = {
    ledger,
    documents: new DocumentStore(s3.client),
    customer,
    bucket: "acme-intake",
    model: { client: new ReferenceModelClient(), modelId: "reference" },
    ...extra,
  };
  return { ledger, s3, deps };
}
