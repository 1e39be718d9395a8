/**
 * Parsing off the event loop for the local runtime: each document is read in a worker thread with
 * a time and memory budget, so one hostile PDF cannot freeze the console, the approval links and
 * every other run (measured before: a 38 KB PDF held the loop for ~63 s). A worker that overruns
 * is terminated and the document fails with a DocumentError the model reports; the next document
 * gets a fresh worker.
 */
import { Worker } from "node:worker_threads";
import { DocumentError } from "../lambdas/shared/errors.js";
import type { ParsedDocument, ParseOptions } from "../lambdas/shared/po/parse.js";

/** Longest a document may take to read (ms), and the heap a parse may use (MiB). */
export const PARSE_TIME_BUDGET_MS = 20_000;
export const PARSE_HEAP_BUDGET_MB = 512;

interface Reply {
  id: number;
  ok: boolean;
  parsed?: ParsedDocument;
  name?: string;
  document?: boolean;
  message?: string;
}

export interface ParsePoolOptions {
  /** @default PARSE_TIME_BUDGET_MS */
  timeBudgetMs?: number;
  /** @default PARSE_HEAP_BUDGET_MB */
  heapBudgetMb?: number;
  /** Worker threads (documents read at once). @default 2 */
  size?: number;
}

/** A small pool of parse workers; `read` has readDocument's signature. */
export class ParsePool {
  private readonly idle: Worker[] = [];
  /** Resolves when a worker has loaded the parsers (its start does not count against a document's budget). */
  private readonly ready = new WeakMap<Worker, Promise<void>>();
  private readonly all = new Set<Worker>();
  private readonly waiting: ((w: Worker) => void)[] = [];
  private nextId = 1;
  /** Documents read to the end in a worker (tests count it). */
  completed = 0;
  private closed = false;

  constructor(private readonly opts: ParsePoolOptions = {}) {}

  private spawn(): Worker {
    // A plain-JS entry registers tsx in the worker, whatever runner started this process.
    const worker = new Worker(new URL("./parse-worker.mjs", import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: this.opts.heapBudgetMb ?? PARSE_HEAP_BUDGET_MB },
    });
    worker.unref();
    this.ready.set(
      worker,
      new Promise<void>((resolve, reject) => {
        const onReady = (m: { ready?: boolean }) => {
          if (!m.ready) return;
          worker.off("message", onReady);
          resolve();
        };
        worker.on("message", onReady);
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`the document reader did not start (exit ${code})`)));
      }),
    );
    // A worker stopped before it was ever used must not leave an unhandled rejection behind.
    this.ready.get(worker)?.catch(() => {});
    this.all.add(worker);
    worker.once("exit", () => this.all.delete(worker));
    return worker;
  }

  /** Starts one worker now (its start-up overlaps the rest of the runtime's). */
  warm(): void {
    if (!this.closed && this.all.size === 0) this.idle.push(this.spawn());
  }

  private acquire(): Promise<Worker> {
    const w = this.idle.pop();
    if (w) return Promise.resolve(w);
    if (this.all.size < (this.opts.size ?? 2)) return Promise.resolve(this.spawn());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    if (next) next(w);
    else this.idle.push(w);
  }

  /** Frees a slot held by a terminated worker. */
  private replace(): void {
    const next = this.waiting.shift();
    if (next && !this.closed) next(this.spawn());
  }

  async read(bytes: Uint8Array, fileName: string, parseOpts: ParseOptions = {}): Promise<ParsedDocument> {
    if (this.closed) throw new Error("the parse pool is closed");
    const worker = await this.acquire();
    await this.ready.get(worker);
    const id = this.nextId++;
    const budget = this.opts.timeBudgetMs ?? PARSE_TIME_BUDGET_MS;
    return new Promise<ParsedDocument>((resolve, reject) => {
      let settled = false;
      const done = (fn: () => void, keep: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (keep) this.release(worker);
        else {
          void worker.terminate();
          this.replace();
        }
        fn();
      };
      const timer = setTimeout(
        () =>
          done(
            () => reject(new DocumentError(`reading the document took longer than ${budget / 1000} s; it was stopped`)),
            false,
          ),
        budget,
      );
      const onMessage = (reply: Reply) => {
        if (reply.id !== id) return;
        if (reply.ok && reply.parsed) {
          this.completed++;
          done(() => resolve(reply.parsed as ParsedDocument), true);
        } else {
          const message = reply.message ?? "unknown error";
          done(
            () =>
              reject(
                reply.document || reply.name === "DocumentError" ? new DocumentError(message) : new Error(message),
              ),
            true,
          );
        }
      };
      const onError = (err: Error) => {
        const oom = /heap|memory|ERR_WORKER_OUT_OF_MEMORY/i.test(
          `${(err as { code?: string }).code ?? ""} ${err.message}`,
        );
        done(
          () =>
            reject(
              oom
                ? new DocumentError(
                    `reading the document needed more than ${this.opts.heapBudgetMb ?? PARSE_HEAP_BUDGET_MB} MiB; it was stopped`,
                  )
                : err,
            ),
          false,
        );
      };
      const onExit = (code: number) =>
        done(() => reject(new DocumentError(`the document reader stopped (exit ${code})`)), false);
      worker.on("message", onMessage);
      worker.once("error", onError);
      worker.once("exit", onExit);
      // A copy: the caller keeps its bytes.
      worker.postMessage({ id, bytes: new Uint8Array(bytes), fileName, opts: parseOpts });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.all].map((w) => w.terminate()));
    this.idle.length = 0;
  }
}
