import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { addCustomerStacks } from "../lib/app.js";

const app = new App();
addCustomerStacks(app, fileURLToPath(new URL("../customers", import.meta.url)));
