/** Entry point of `npm start` and `npx po-agent`: runs the CLI and exits with its code. */
import { main } from "./cli.js";

// Local mode runs on Node 20; the SDK's "Node 22 soon" notice concerns the Lambda runtime, which is Node 22.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `po-agent: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(70);
  },
);
