import { createRequire } from "node:module";

const load = createRequire(import.meta.url);

/**
 * A dependency too large to load at every cold start (a tokenizer's ranks, a wasm engine), required
 * on first use instead. The bundles leave it out of index.mjs and ship it beside it under
 * node_modules/ (LAZY_DEPENDENCIES, lib/po-agent-function.ts); from the sources it resolves from the
 * repository. `require` (CommonJS, synchronous) keeps the callers' APIs synchronous.
 */
export function lazyModule<T extends object>(specifier: string): T {
  let mod: T | undefined;
  const get = (): T => {
    mod ??= load(specifier) as T;
    return mod;
  };
  return new Proxy({} as T, {
    get: (_target, key) => Reflect.get(get(), key),
    has: (_target, key) => Reflect.has(get(), key),
  });
}
