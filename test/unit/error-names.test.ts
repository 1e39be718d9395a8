import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * Error names are a contract (Lambda reports `error.name` as errorType; Step Functions Retry/Catch match
 * on it; failure reasons and the CLI's one-line messages start with it), and the bundles are minified
 * without keepNames: a name taken from the class (`new.target.name`, `this.constructor.name`) reads `xo`
 * in AWS. So every error class declares its name as a string literal, equal to its class name unless
 * listed here.
 */
const DELIBERATE: Record<string, string | "given at construction"> = {
  // Retried by the state machine as a TransientError; the subclass only adds the status and retry-after.
  ModelTransientError: "TransientError",
  // The local engine's rejection that Step Functions semantics treat as a runtime failure.
  ExecutionStoppedError: "States.Runtime",
  // Named by the AWS error code they stand for (ExecutionDoesNotExist, …).
  LocalSfnError: "given at construction",
  ApiError: "given at construction",
};

const ROOTS = ["lambdas", "lib", "local", "scripts", "bin"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sourceFiles(path);
    return /\.(ts|mts)$/.test(e.name) && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

interface ClassInfo {
  readonly file: string;
  readonly name: string;
  readonly base: string;
  /** The string literal of `name = "…"` (a property) or `this.name = "…"` (in the constructor). */
  readonly literal: string | undefined;
  /** `this.name = <anything but a literal>` in the constructor. */
  readonly assignsComputed: boolean;
}

function classesOf(file: string): ClassInfo[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const found: ClassInfo[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isClassDeclaration(node) || ts.isClassExpression(node)) && node.name) {
      const base = node.heritageClauses
        ?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)
        ?.types[0]?.expression.getText(source);
      if (base !== undefined) {
        let literal: string | undefined;
        let assignsComputed = false;
        for (const member of node.members) {
          if (ts.isPropertyDeclaration(member) && member.name.getText(source) === "name" && member.initializer) {
            if (ts.isStringLiteral(member.initializer)) literal = member.initializer.text;
            else assignsComputed = true;
          }
          if (ts.isConstructorDeclaration(member) && member.body) {
            const inCtor = (n: ts.Node) => {
              if (
                ts.isBinaryExpression(n) &&
                n.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
                n.left.getText(source) === "this.name"
              ) {
                if (ts.isStringLiteral(n.right)) literal = n.right.text;
                else assignsComputed = true;
              }
              ts.forEachChild(n, inCtor);
            };
            inCtor(member.body);
          }
        }
        found.push({ file, name: node.name.text, base, literal, assignsComputed });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const files = ROOTS.flatMap(sourceFiles);
const classes = files.flatMap(classesOf);
/** Classes that are errors: extending Error or a class that is (ours or a library's `…Error`), to a fixed point. */
const errorClasses = (() => {
  const names = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of classes)
      if (!names.has(c.name) && (/Error$/.test(c.base) || names.has(c.base))) {
        names.add(c.name);
        grew = true;
      }
  }
  return classes.filter((c) => names.has(c.name));
})();

describe("error names survive minification", () => {
  it("finds the error classes (the scan itself works)", () => {
    // Assess: the base of the hierarchy, a subclass of a subclass, and the local-only ones are all seen.
    const names = errorClasses.map((c) => c.name);
    for (const n of ["PoAgentError", "TransientError", "ModelTransientError", "PoDocumentError", "UsageError"])
      expect(names).toContain(n);
    expect(errorClasses.length).toBeGreaterThanOrEqual(25);
    // Every deliberate exception is still an error class (a stale entry would excuse nothing, silently).
    for (const n of Object.keys(DELIBERATE)) expect(names).toContain(n);
  });

  it("every error class declares its name as a string literal equal to its class name", () => {
    const wrong = errorClasses.flatMap((c) => {
      const expected = DELIBERATE[c.name] ?? c.name;
      if (expected === "given at construction")
        return c.assignsComputed ? [] : [`${c.file}: ${c.name} no longer takes its name at construction`];
      if (c.assignsComputed) return [`${c.file}: ${c.name} computes its name (minified, a class name is mangled)`];
      if (c.literal !== expected)
        return [`${c.file}: ${c.name} declares name ${JSON.stringify(c.literal)}, expected "${expected}"`];
      return [];
    });
    expect(wrong).toEqual([]);
  });

  it("no source takes a name from a class or function at runtime", () => {
    // `new.target.name`, `this.constructor.name`: each reads a minified identifier in AWS.
    const offending = files.flatMap((file) =>
      readFileSync(file, "utf8")
        .split("\n")
        .flatMap((line, i) =>
          /\bnew\.target\.name\b|\bconstructor\.name\b/.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [],
        ),
    );
    expect(offending).toEqual([]);
  });
});
