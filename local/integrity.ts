/**
 * Corruption of the local ledger is found and named at start, before the store is opened; nothing
 * is repaired or deleted.
 *
 * Measured on dynalite's LevelDB (4 runs, 109 records): 64 flipped bytes in the write-ahead log
 * are noticed by LevelDB only in its info `LOG` ("ignoring error … dropping 19057 bytes;
 * checksum mismatch"), 4 records vanish, and LevelDB then deletes the damaged log while
 * compacting; a log cut to 60% loses 45 records with no message at all. So:
 *
 * 1. Every record of every `*.log` is checked against its own CRC32C (LevelDB's log format)
 *    before LevelDB opens it: a bad record stops the start.
 * 2. On a clean close, a manifest of every store file with its size and SHA-256 is written; the
 *    next start verifies it (a truncated, replaced or missing file stops the start). While the
 *    store is open the manifest says so, so after a crash only check 1 applies.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** The local store is damaged; the message names the file and what to do. */
export class StoreCorruptError extends Error {
  override readonly name: string = "StoreCorruptError";
}

const MANIFEST = "integrity.json";

interface Manifest {
  state: "open" | "clean";
  at: string;
  files?: Record<string, { size: number; sha256: string }>;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli), as LevelDB computes it. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = (CRC_TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** LevelDB stores CRCs masked (so a CRC of data containing CRCs is not trivially zero). */
const unmask = (masked: number) => {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
};

const BLOCK = 32 * 1024;
const HEADER = 7;

/**
 * The byte offset of the first record of a LevelDB log whose checksum does not match, if any. A
 * record cut short at the very end (a write torn by a crash) is not corruption: LevelDB drops it.
 */
export function firstBadLogRecord(bytes: Uint8Array): number | undefined {
  let offset = 0;
  while (offset < bytes.length) {
    const inBlock = BLOCK - (offset % BLOCK);
    if (inBlock < HEADER) {
      offset += inBlock; // block trailer padding
      continue;
    }
    if (offset + HEADER > bytes.length) return undefined; // torn header at the end
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER);
    const masked = view.getUint32(0, true);
    const length = view.getUint16(4, true);
    const type = view.getUint8(6);
    if (type === 0 && length === 0 && masked === 0) {
      offset += inBlock; // zero-filled rest of a block (preallocation)
      continue;
    }
    const end = offset + HEADER + length;
    if (end > bytes.length) return undefined; // torn record at the end
    if (length > inBlock - HEADER || type < 1 || type > 4) return offset;
    if (crc32c(bytes, offset + 6, end) !== unmask(masked)) return offset;
    offset = end;
  }
  return undefined;
}

function storeFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f !== "LOCK" && f !== "LOG" && f !== "LOG.old" && !f.startsWith("."))
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

const fileHash = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

const WHAT_TO_DO = (dir: string) =>
  `nothing was changed; restore ${dir} from a backup, or move it away to start with an empty ledger`;

/** Checks the store under `dir` (dynalite's LevelDB) before it is opened; throws StoreCorruptError. */
export function verifyStore(dir: string): void {
  if (!existsSync(dir)) return;
  const manifestPath = join(dir, MANIFEST);
  let manifest: Manifest | undefined;
  if (existsSync(manifestPath)) {
    try {
      manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Manifest;
    } catch {
      throw new StoreCorruptError(`${manifestPath} is not valid JSON; ${WHAT_TO_DO(dir)}`);
    }
  }
  const files = storeFiles(dir).filter((f) => f !== MANIFEST);
  for (const f of files.filter((x) => x.endsWith(".log"))) {
    const bad = firstBadLogRecord(readFileSync(join(dir, f)));
    if (bad !== undefined) {
      throw new StoreCorruptError(
        `the ledger store ${join(dir, f)} is corrupt (the record at byte ${bad} fails its checksum); ${WHAT_TO_DO(dir)}`,
      );
    }
  }
  if (manifest?.state === "clean" && manifest.files) {
    for (const [name, want] of Object.entries(manifest.files)) {
      const path = join(dir, name);
      if (!existsSync(path)) {
        throw new StoreCorruptError(
          `the ledger store file ${path} is missing since the last clean stop; ${WHAT_TO_DO(dir)}`,
        );
      }
      const size = statSync(path).size;
      if (size !== want.size || fileHash(path) !== want.sha256) {
        throw new StoreCorruptError(
          `the ledger store file ${path} changed since the last clean stop (${size} bytes, was ${want.size}${size === want.size ? ", same size, other bytes" : ""}); ${WHAT_TO_DO(dir)}`,
        );
      }
    }
  }
}

interface LevelLike {
  open(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the store once with LevelDB itself (dynalite's own `level`) and closes it: a store LevelDB
 * cannot open (a cut CURRENT or MANIFEST, a lock held by another process) is named here, instead of
 * dynalite answering every request with "Database is closed".
 */
export async function probeStore(dir: string): Promise<void> {
  if (!existsSync(join(dir, "CURRENT"))) return;
  const { Level } = createRequire(createRequire(import.meta.url).resolve("dynalite"))("level") as {
    Level: new (path: string, opts: { createIfMissing: boolean }) => LevelLike;
  };
  const db = new Level(dir, { createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    const locked = (err as { code?: string }).code === "LEVEL_LOCKED" || /lock/i.test(cause ?? "");
    throw new StoreCorruptError(
      locked
        ? `the ledger store ${dir} is locked by another process (${firstLine(cause)}); stop it or use another --data-dir`
        : `the ledger store ${dir} cannot be opened: ${firstLine(cause)}; ${WHAT_TO_DO(dir)}`,
    );
  }
  await db.close();
}

const firstLine = (text: string | undefined) => (text ?? "").split("\n")[0]?.trim().slice(0, 300) ?? "";

function writeManifest(dir: string, manifest: Manifest): void {
  const tmp = join(dir, `${MANIFEST}.tmp`);
  writeFileSync(tmp, JSON.stringify(manifest));
  renameSync(tmp, join(dir, MANIFEST));
}

/** True when the store is new or its last process closed it (false after a crash or a kill). */
export function storeClosedCleanly(dir: string): boolean {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) return storeFiles(dir).length === 0;
  try {
    return (JSON.parse(readFileSync(path, "utf8")) as Manifest).state === "clean";
  } catch {
    return false;
  }
}

/** Marks the store open (call after verifyStore, before opening it). */
export function markStoreOpen(dir: string): void {
  if (existsSync(dir)) writeManifest(dir, { state: "open", at: new Date().toISOString() });
}

/** Records every store file's size and hash (call after the store closed cleanly). */
export function markStoreClean(dir: string): void {
  if (!existsSync(dir)) return;
  const files: NonNullable<Manifest["files"]> = {};
  for (const f of storeFiles(dir).filter((x) => x !== MANIFEST && !x.endsWith(".tmp"))) {
    const path = join(dir, f);
    files[f] = { size: statSync(path).size, sha256: fileHash(path) };
  }
  writeManifest(dir, { state: "clean", at: new Date().toISOString(), files });
}
