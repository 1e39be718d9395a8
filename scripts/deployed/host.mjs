/**
 * Hosts one synthesized Lambda bundle in a fresh process, as the Node.js Lambda runtime does: the
 * environment is the function's (set by the parent), the module is imported once (its init time
 * measured), then each message from the parent is one invocation. A thrown error is reported as the
 * runtime reports it: `errorType` is `error.name` (what Step Functions matches ErrorEquals on).
 * No resolution hooks and no NODE_PATH: a bundle carries everything it imports (the AWS SDK included),
 * so an import that only resolves from the repository fails here as it would in Lambda.
 *
 * argv: <bundle dir>
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dir] = process.argv.slice(2);
if (!dir || !process.send) {
  console.error("usage: forked with IPC, argv <bundle dir>");
  process.exit(2);
}

/** The runtime's error shape (aws-lambda-nodejs-runtime-interface-client: errorType = error.name). */
function toRapid(error) {
  if (error instanceof Error || (error && typeof error === "object" && "name" in error && "message" in error)) {
    return { errorType: String(error.name), errorMessage: String(error.message) };
  }
  return { errorType: typeof error, errorMessage: String(error) };
}

const started = performance.now();
const startedCpu = process.cpuUsage();
/** CPU time of the init (user + system, all threads): what it costs a full core, whatever the machine's load. */
const initCpuMs = () => {
  const { user, system } = process.cpuUsage(startedCpu);
  return (user + system) / 1000;
};
let handler;
try {
  const mod = await import(pathToFileURL(join(dir, "index.mjs")).href);
  handler = mod.handler;
  process.send({
    type: "ready",
    initMs: performance.now() - started,
    initCpuMs: initCpuMs(),
    execArgv: process.execArgv,
    arch: process.arch,
  });
} catch (error) {
  process.send({ type: "init-error", ...toRapid(error), initMs: performance.now() - started });
}

let invocation = 0;
/** Invocations in flight, and for each one whether another ran beside it (its CPU figure then includes that one). */
const inFlight = new Set();
process.on("message", async (msg) => {
  if (msg?.type === "exit") process.exit(0);
  if (msg?.type !== "invoke") return;
  invocation += 1;
  // The Node.js runtime sets the invocation's X-Ray trace header in the environment before each call.
  if (typeof msg.traceHeader === "string") process.env._X_AMZN_TRACE_ID = msg.traceHeader;
  else delete process.env._X_AMZN_TRACE_ID;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME ?? "local",
    awsRequestId: `local-${process.pid}-${invocation}`,
    getRemainingTimeInMillis: () => 60_000,
  };
  // CPU of the process while this invocation ran (the first one includes the chunks it imported on first use).
  const me = { overlapped: inFlight.size > 0 };
  for (const other of inFlight) other.overlapped = true;
  inFlight.add(me);
  const before = process.cpuUsage();
  const cpuMs = () => {
    const { user, system } = process.cpuUsage(before);
    return (user + system) / 1000;
  };
  try {
    if (!handler) throw new Error("the bundle did not initialize");
    const result = await handler(msg.event, context);
    inFlight.delete(me);
    process.send({ type: "result", id: msg.id, ok: true, result: result ?? null, cpuMs: cpuMs(), ...me });
  } catch (error) {
    inFlight.delete(me);
    process.send({ type: "result", id: msg.id, ok: false, ...toRapid(error), cpuMs: cpuMs(), ...me });
  }
});
