import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { addCustomerStacks } from "../lib/app.js";

const app = new App();
// `-c customersDir=DIR` synthesizes another set of customer files (tests, check:deployed).
const customersDir: unknown = app.node.tryGetContext("customersDir");
try {
  addCustomerStacks(
    app,
    typeof customersDir === "string" ? customersDir : fileURLToPath(new URL("../customers", import.meta.url)),
  );
} catch (err) {
  // A bad customer config is the operator's to fix: one line naming the file and field, no stack trace.
  if (err instanceof Error && (err.name === "ConfigError" || err.name === "DeployConfigError")) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
