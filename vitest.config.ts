import { defineConfig } from "vitest/config";
import SlowFirstSequencer from "./test/support/slow-first-sequencer.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The local end-to-end tests start real emulated servers; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    allowOnly: false,
    // Longest files first, so the last minutes do not run one long file on one core (see the sequencer).
    sequence: { sequencer: SlowFirstSequencer },
    // Local mode runs on Node 20; the SDK notice about Node 22 concerns the Lambda runtime (Node 22).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});
