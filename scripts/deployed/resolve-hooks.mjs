/**
 * Module resolution hooks for running a synthesized bundle in place (inside cdk.out): the bundles
 * leave `@aws-sdk/*` external because the Lambda runtime provides it, so a bare specifier the
 * bundle's own folder cannot resolve is resolved from the repository, as the runtime's copy would be.
 */
let root;

export function initialize(data) {
  root = data.root;
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const bare = !/^(\.|\/|file:|node:|data:)/.test(specifier);
    if (bare && err?.code === "ERR_MODULE_NOT_FOUND" && root) return next(specifier, { ...context, parentURL: root });
    throw err;
  }
}
