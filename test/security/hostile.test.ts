import { beforeAll, describe, expect, it } from "vitest";
import { type HostileResult, runHostileSuite } from "./hostile.js";

describe("hostile inputs against the guard and the approval gate", () => {
  let results: HostileResult[] = [];
  beforeAll(async () => {
    results = await runHostileSuite();
  }, 120_000);

  it("tries every case, each with at least one hostile input", () => {
    // Assess
    expect(results.map((r) => r.name)).toEqual([
      "forged or altered signed links",
      "expired links",
      "reused links (single use)",
      "links of people who are not this request's approvers",
      "link scanners that follow every GET (and other methods)",
      "arguments changed after the email or after the approval",
      "an approval from another run",
      "prompt injection obeyed by the model",
      "a link for a request made under another policy revision",
    ]);
    for (const r of results) expect(r.tried, r.name).toBeGreaterThan(0);
  });

  it("lets none of them through", () => {
    // Assess: the breaches, named, so a failure says which attack worked.
    expect(results.flatMap((r) => r.breaches.map((b) => `${r.name}: ${b}`))).toEqual([]);
  });

  it("still lets the legitimate path through in every case (the attacks hit a working gate)", () => {
    // Assess
    expect(results.filter((r) => !r.controlOk).map((r) => r.name)).toEqual([]);
  });
});
