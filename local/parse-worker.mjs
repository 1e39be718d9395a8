// Entry of the parse worker (plain JS so any runner can start it): TypeScript via tsx, then the worker.
import { register } from "tsx/esm/api";

register();
await import("./parse-worker.ts");
