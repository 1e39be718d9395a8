/** Worker side of local/parse-pool.ts: reads one document per message with the shared parsers. */
import { parentPort } from "node:worker_threads";
import { DocumentError } from "../lambdas/shared/errors.js";
import type { ParseOptions } from "../lambdas/shared/po/fields.js";
import { readDocument } from "../lambdas/shared/po/parse.js";

interface Job {
  id: number;
  bytes: Uint8Array;
  fileName: string;
  opts: ParseOptions;
}

// Loading the parsers is the slow part of a start; the pool's clock starts after this.
parentPort?.postMessage({ ready: true });

parentPort?.on("message", (job: Job) => {
  readDocument(job.bytes, job.fileName, job.opts).then(
    (parsed) => parentPort?.postMessage({ id: job.id, ok: true, parsed }),
    (err: unknown) =>
      parentPort?.postMessage({
        id: job.id,
        ok: false,
        name: err instanceof Error ? err.name : "Error",
        // Subclasses (PoDocumentError) are document errors too: the model reports them, nothing retries them.
        document: err instanceof DocumentError,
        message: err instanceof Error ? err.message : String(err),
      }),
  );
});
