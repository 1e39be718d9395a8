/**
 * One data dir, one owner: the process that opened `.po-agent/` (its DynamoDB store, S3 files,
 * traces) holds `<dataDir>/owner.json` (pid, what it runs, where its HTTP server and key are; 0600).
 * Another process either talks to that owner over HTTP or stops with one line naming its pid; a
 * file left by a process that died is noticed (no such pid) and taken over.
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";

export interface OwnerInfo {
  pid: number;
  /** What the owner runs: `start`, `mcp`, `run`, … */
  command: string;
  startedAt: string;
  /** The owner's console / API base URL, once it listens. */
  httpUrl?: string;
  /** The owner's per-start key (the file is readable by this user only). */
  key?: string;
}

/** The data dir is owned by a live process (not this one's stack). */
export class DataDirBusyError extends Error {
  override readonly name: string = "DataDirBusyError";
  constructor(
    readonly owner: OwnerInfo,
    dataDir: string,
  ) {
    super(
      `${dataDir} is in use by po-agent ${owner.command} (pid ${owner.pid}, since ${owner.startedAt}); stop that process or use another --data-dir`,
    );
  }
}

export const ownerFile = (dataDir: string) => join(dataDir, "owner.json");

/** Data dirs this process holds (so a second stack in the same process is refused too). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The live owner of a data dir, if any (a stale file, garbage or a dead pid, counts as none). */
export function readOwner(dataDir: string): OwnerInfo | undefined {
  const path = ownerFile(dataDir);
  if (!existsSync(path)) return undefined;
  let info: OwnerInfo;
  try {
    info = JSON.parse(readFileSync(path, "utf8")) as OwnerInfo;
  } catch {
    return undefined;
  }
  if (typeof info.pid !== "number" || !Number.isInteger(info.pid) || info.pid <= 0) return undefined;
  if (info.pid === process.pid) return held.has(resolve(dataDir)) ? info : undefined;
  return alive(info.pid) ? info : undefined;
}

export interface OwnerLock {
  /** Records where the owner listens (after its server started). */
  update(patch: Partial<Pick<OwnerInfo, "httpUrl" | "key">>): void;
  release(): void;
}

/** Takes the data dir for this process, or throws DataDirBusyError naming the live owner. */
export function acquireOwner(dataDir: string, command: string): OwnerLock {
  const abs = resolve(dataDir);
  const path = ownerFile(dataDir);
  let info: OwnerInfo = { pid: process.pid, command, startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      try {
        writeSync(fd, JSON.stringify(info));
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 2) throw err;
      const owner = readOwner(dataDir);
      if (owner) throw new DataDirBusyError(owner, dataDir);
      // Stale: the owner died without cleaning up. Take it over (one rename wins a race).
      const stale = `${path}.stale-${process.pid}`;
      try {
        renameSync(path, stale);
        rmSync(stale, { force: true });
      } catch {
        // Someone else took it over first; try again.
      }
    }
  }
  held.add(abs);
  let released = false;
  return {
    update(patch) {
      if (released) return;
      info = { ...info, ...patch };
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(info), { mode: 0o600 });
      renameSync(tmp, path);
    },
    release() {
      if (released) return;
      released = true;
      held.delete(abs);
      try {
        const current = JSON.parse(readFileSync(path, "utf8")) as OwnerInfo;
        if (current.pid === process.pid) rmSync(path, { force: true });
      } catch {
        // Already gone.
      }
    },
  };
}
