import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document as YamlDocument } from "yaml";
import { z } from "zod/v3";
import { ConfigError } from "../errors.js";
import { toMinor } from "../po/money.js";
import { CustomerConfig, Weekday } from "./schema.js";

type Path = readonly (string | number)[];

/** Most alias (`*name`) uses a customer file may expand. */
const MAX_ALIASES = 50;

interface Problem {
  line: number;
  col: number;
  text: string;
}

/**
 * Loads and validates one `customers/<name>.yaml`. Every problem is reported at once, one per line,
 * as `file:line:col: field.path: what was expected, got what`, so a typo is fixed in one go.
 */
export function loadCustomerFile(path: string): CustomerConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(err);
    throw new ConfigError(`${path}: cannot read customer config: ${reason}`, { cause: err });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number) => lineCounter.linePos(offset);

  if (doc.errors.length > 0) {
    // Later syntax errors are usually echoes of the first; report it and count the rest.
    const [first, ...rest] = doc.errors;
    const more = rest.length > 0 ? ` (${rest.length} more error(s) follow from it)` : "";
    const where = at(first?.pos[0] ?? 0);
    throw new ConfigError(
      `${path}:${where.line}:${where.col}: YAML syntax error: ${firstLine(first?.message ?? "")}${more}`,
    );
  }
  let data: unknown;
  try {
    // A config needs few aliases; a YAML "billion laughs" expands without bound.
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read the YAML: ${firstLine(err instanceof Error ? err.message : String(err))} (at most ${MAX_ALIASES} alias uses)`,
      { cause: err },
    );
  }
  if (data === null || data === undefined) {
    throw new ConfigError(`${path}:1:1: the file is empty; expected a customer config mapping`);
  }

  const locate = locator(doc, at);
  const problems: Problem[] = [];
  const expectedName = basename(path).replace(/\.yaml$/, "");
  const rawName = isRecord(data) ? data.name : undefined;
  if (typeof rawName === "string" && rawName !== expectedName) {
    problems.push({
      ...locate(["name"]),
      text: `name: expected "${expectedName}" (the file name without .yaml), got "${rawName}"`,
    });
  }

  const checked = checkConfig(data, locate);
  problems.push(...checked.problems);
  if (problems.length > 0 || !checked.config) throw new ConfigError(render(path, problems));
  return checked.config;
}

/**
 * Validates a customer config built in code (no file to point into) exactly as `loadCustomerFile`
 * validates a file, schema and semantic checks alike; each problem is `field.path: what was expected,
 * got what`. The synth (lib/po-agent-function.ts) calls it for whatever config it is handed.
 */
export function checkCustomerConfig(
  data: unknown,
): { ok: true; config: CustomerConfig } | { ok: false; problems: string[] } {
  const { config, problems } = checkConfig(data, () => ({ line: 0, col: 0 }));
  return config && problems.length === 0 ? { ok: true, config } : { ok: false, problems: problems.map((p) => p.text) };
}

/** The schema's problems, else the semantic ones, each located; `config` when the schema accepted it. */
function checkConfig(data: unknown, locate: Locate): { config?: CustomerConfig; problems: Problem[] } {
  const parsed = CustomerConfig.safeParse(data);
  if (parsed.success) return { config: parsed.data, problems: semanticProblems(parsed.data, locate) };
  const problems: Problem[] = [];
  for (const issue of parsed.error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        problems.push({
          ...locate([...issue.path, key], true),
          text: `${fieldPath([...issue.path, key])}: ${unknownField(issue.path, key)}`,
        });
      }
      continue;
    }
    const got = valueAt(data, issue.path);
    problems.push({ ...locate(issue.path), text: `${fieldPath(issue.path)}: ${describe(issue, got)}` });
  }
  return { problems };
}

/** Every `*.yaml` in `dir`, sorted by file name; all files' problems are reported together. */
export function loadCustomers(dir: string): CustomerConfig[] {
  const files = customerFiles(dir);
  const configs: CustomerConfig[] = [];
  const errors: string[] = [];
  for (const file of files) {
    try {
      configs.push(loadCustomerFile(join(dir, file)));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length > 0) throw new ConfigError(errors.join("\n"));
  return configs;
}

/** One customer by name; an unknown name lists the customers that exist. */
export function loadCustomer(dir: string, name: string): CustomerConfig {
  const known = customerFiles(dir).map((f) => f.replace(/\.yaml$/, ""));
  if (!known.includes(name)) {
    throw new ConfigError(`unknown customer "${name}" in ${dir}; known customers: ${known.join(", ")}`);
  }
  return loadCustomerFile(join(dir, `${name}.yaml`));
}

function customerFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError(`customer config directory ${dir} does not exist`);
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  if (files.length === 0) throw new ConfigError(`no customer configs (*.yaml) in ${dir}`);
  return files;
}

/** Checks the schema cannot express: reachable tiers, every day covered, exact amounts, unique ids. */
function semanticProblems(cfg: CustomerConfig, locate: Locate): Problem[] {
  const problems: Problem[] = [];
  const add = (path: Path, text: string) => problems.push({ ...locate(path), text: `${fieldPath(path)}: ${text}` });

  const exact = (path: Path, amount: number) => {
    try {
      toMinor(amount, cfg.currency);
    } catch (err) {
      add(path, `expected an exact ${cfg.currency} amount, got ${amount} (${(err as Error).message})`);
    }
  };
  cfg.approvers.forEach((a, i) => {
    if (a.limit !== undefined) exact(["approvers", i, "limit"], a.limit);
    if (a.delegates.includes(a.id)) add(["approvers", i, "delegates"], `"${a.id}" cannot be their own delegate`);
  });
  cfg.approvalPolicy.tiers.forEach((t, i) => {
    exact(["approvalPolicy", "tiers", i, "autoApproveUpTo"], t.autoApproveUpTo);
  });

  duplicates(cfg.approvers.map((a) => a.id)).forEach((i) => {
    add(["approvers", i, "id"], `duplicate approver id "${cfg.approvers[i]?.id}"`);
  });
  duplicates(cfg.vendors.map((v) => v.id)).forEach((i) => {
    add(["vendors", i, "id"], `duplicate vendor id "${cfg.vendors[i]?.id}"`);
  });
  duplicates(cfg.approvalPolicy.tiers.map((t) => t.name)).forEach((i) => {
    add(["approvalPolicy", "tiers", i, "name"], `duplicate tier name "${cfg.approvalPolicy.tiers[i]?.name}"`);
  });

  // The first matching tier decides, so a tier whose days are all taken by earlier tiers is dead.
  const covered = new Set<Weekday>();
  cfg.approvalPolicy.tiers.forEach((t, i) => {
    const days = t.when.weekdays ?? Weekday.options;
    if (days.every((d) => covered.has(d))) {
      add(
        ["approvalPolicy", "tiers", i],
        `tier "${t.name}" can never apply: earlier tiers already cover ${days.join(", ")}`,
      );
    }
    for (const d of days) covered.add(d);
  });
  const uncovered = Weekday.options.filter((d) => !covered.has(d));
  if (uncovered.length > 0) {
    add(
      ["approvalPolicy", "tiers"],
      `no tier applies on ${uncovered.join(", ")}; end the list with a tier that has no "when"`,
    );
  }
  return problems;
}

function duplicates(values: string[]): number[] {
  return values.flatMap((v, i) => (values.indexOf(v) !== i ? [i] : []));
}

type Locate = (path: Path, atKey?: boolean) => { line: number; col: number };

/** Finds the source position of a field path; a missing field points at its nearest parent. */
function locator(doc: YamlDocument, at: (offset: number) => { line: number; col: number }): Locate {
  return (path, atKey = false) => {
    let node: unknown = doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (const [i, seg] of path.entries()) {
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
        if (!pair) break;
        const keyStart = rangeStart(pair.key);
        const valueStart = rangeStart(pair.value);
        offset = (last && atKey ? keyStart : (valueStart ?? keyStart)) ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        const item: unknown = node.items[seg];
        if (item === undefined) break;
        offset = rangeStart(item) ?? offset;
        node = item;
      } else {
        break;
      }
    }
    return at(offset);
  };
}

function rangeStart(node: unknown): number | undefined {
  if (typeof node !== "object" || node === null || !("range" in node)) return undefined;
  const range = (node as { range?: readonly number[] | null }).range;
  return range?.[0];
}

function describe(issue: z.ZodIssue, got: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      if (issue.received === "undefined") return `missing; expected ${typeName(issue.expected)}`;
      return `expected ${typeName(issue.expected)}, got ${show(got)}`;
    case "invalid_string":
      if (issue.validation === "email") return `expected an email address, got ${show(got)}`;
      if (issue.validation === "url") return `expected a URL, got ${show(got)}`;
      return `expected ${issue.message}, got ${show(got)}`;
    case "too_small":
      if (issue.type === "array") return `expected at least ${issue.minimum} item(s), got ${show(got)}`;
      if (issue.type === "string") return `expected at least ${issue.minimum} character(s), got ${show(got)}`;
      return `expected a number ${issue.inclusive ? "≥" : ">"} ${issue.minimum}, got ${show(got)}`;
    case "invalid_enum_value":
      return `expected one of ${issue.options.join(", ")}, got ${show(got)}`;
    case "custom":
      // Refinements phrase what they want ("an IANA time zone ..."); superRefine states the fault.
      return /^an? /.test(issue.message) ? `expected ${issue.message}, got ${show(got)}` : issue.message;
    default:
      return `${issue.message}, got ${show(got)}`;
  }
}

function typeName(t: string): string {
  const names: Record<string, string> = {
    string: "text",
    number: "a number",
    integer: "a whole number",
    boolean: "true or false",
    array: "a list",
    object: "a mapping",
  };
  return names[t] ?? t;
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/** `approvers[1].email` */
function fieldPath(path: Path): string {
  if (path.length === 0) return "(top level)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function valueAt(data: unknown, path: Path): unknown {
  let v: unknown = data;
  for (const seg of path) {
    if (Array.isArray(v) && typeof seg === "number") v = v[seg];
    else if (isRecord(v) && typeof seg === "string") v = v[seg];
    else return undefined;
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** "unknown field "emial" (did you mean "email"?; allowed: ...)" from the schema at that path. */
function unknownField(path: Path, key: string): string {
  const allowed = allowedKeys(path);
  if (allowed.length === 0) return `unknown field "${key}"`;
  const near = allowed.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return `unknown field "${key}"${near ? ` (did you mean "${near}"?)` : ""}; allowed: ${allowed.join(", ")}`;
}

function allowedKeys(path: Path): string[] {
  let schema: z.ZodTypeAny = CustomerConfig;
  for (const seg of [...path, null]) {
    for (;;) {
      if (schema instanceof z.ZodEffects) schema = schema.innerType();
      else if (schema instanceof z.ZodDefault) schema = schema.removeDefault();
      else if (schema instanceof z.ZodOptional) schema = schema.unwrap();
      else break;
    }
    if (seg === null) break;
    if (schema instanceof z.ZodArray && typeof seg === "number") schema = schema.element;
    else if (schema instanceof z.ZodObject && typeof seg === "string") {
      const next = (schema.shape as Record<string, z.ZodTypeAny>)[seg];
      if (!next) return [];
      schema = next;
    } else return [];
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as Record<string, unknown>) : [];
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function render(path: string, problems: Problem[]): string {
  return [...problems]
    .sort((a, b) => a.line - b.line || a.col - b.col)
    .map((p) => `${path}:${p.line}:${p.col}: ${p.text}`)
    .join("\n");
}

function firstLine(message: string): string {
  return message.split("\n")[0] ?? message;
}
