#!/usr/bin/env node
// `npx po-agent`: runs the TypeScript CLI through tsx (no build step).
import { register } from "tsx/esm/api";

register();
await import("../local/main.ts");
