/**
 * Half-written objects of the local S3 store, repaired before s3rver opens it. s3rver keeps each
 * object as three plain files written one after another (the content, `.md5`, then
 * `_metadata.json`), not atomically, and answers its 200 only after the last one. A process killed
 * in between (Ctrl-C twice, SIGKILL, a power cut) leaves an empty or missing metadata file, and
 * s3rver then answers every read of that key with InternalError (500) for ever: a run whose
 * document or order is such an object can never finish. Seen in `npm run bench:durability` after
 * SIGKILLs (an empty `processed/<po>.json` metadata file, a missing one under `versions/`).
 *
 * S3 itself writes atomically, so the repair restores that, and only where the metadata is missing
 * or unreadable (the one state s3rver cannot serve): an object whose content matches the MD5
 * s3rver recorded for it was written whole and gets a minimal metadata file (its content type is
 * lost: s3rver then answers `binary/octet-stream`); one whose content does not match, or that has
 * no MD5, was never acknowledged and is removed with its side files, as if the PUT had not
 * happened. An object with readable metadata is never touched, whatever its `.md5` says: s3rver's
 * own CopyObject with REPLACE leaves the destination's old `.md5` behind. It runs only after an
 * unclean stop (services.ts), when a write can have been cut.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const OBJECT = "._S3rver_object";
const METADATA = "._S3rver_metadata.json";
const MD5 = "._S3rver_object.md5";

export interface ObjectStoreRepair {
  /** Objects written whole whose metadata was missing or cut: metadata rewritten. */
  repaired: string[];
  /** Objects whose write never completed: removed. Paths are `<bucket>/<key>`. */
  removed: string[];
}

/** Repairs the store under `dir` (s3rver's directory: one folder per bucket); returns what it did. */
export function repairObjectStore(dir: string): ObjectStoreRepair {
  const result: ObjectStoreRepair = { repaired: [], removed: [] };
  if (!existsSync(dir)) return result;
  for (const objectPath of objectFiles(dir)) {
    const base = objectPath.slice(0, -OBJECT.length);
    const name = relative(dir, base);
    if (readsAsJsonObject(`${base}${METADATA}`)) continue;
    const recorded = existsSync(`${base}${MD5}`) ? readFileSync(`${base}${MD5}`, "utf8").trim() : undefined;
    const whole =
      recorded !== undefined && createHash("md5").update(readFileSync(objectPath)).digest("hex") === recorded;
    if (whole) {
      writeFileSync(`${base}${METADATA}`, "{}");
      result.repaired.push(name);
      continue;
    }
    for (const f of [objectPath, `${base}${METADATA}`, `${base}${MD5}`]) rmSync(f, { force: true });
    result.removed.push(name);
  }
  return result;
}

function readsAsJsonObject(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

function* objectFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* objectFiles(path);
    else if (entry.isFile() && entry.name.endsWith(OBJECT)) yield path;
  }
}

/** One line for the start-up output, or undefined when nothing needed repair. */
export function describeRepair(r: ObjectStoreRepair): string | undefined {
  if (r.repaired.length === 0 && r.removed.length === 0) return undefined;
  const list = (xs: string[]) => `${xs.slice(0, 3).join(", ")}${xs.length > 3 ? ` and ${xs.length - 3} more` : ""}`;
  const parts = [
    ...(r.repaired.length > 0
      ? [`${r.repaired.length} written whole got their metadata back (${list(r.repaired)})`]
      : []),
    ...(r.removed.length > 0 ? [`${r.removed.length} never completed were removed (${list(r.removed)})`] : []),
  ];
  return `local S3 store: objects cut by a stopped process: ${parts.join("; ")}`;
}
