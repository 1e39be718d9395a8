import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One answer of the endpoint: the HTTP status and the JSON body (an AWS error is `{ __type, message }`). */
export interface JsonReply {
  status: number;
  body: unknown;
}

/**
 * A local endpoint speaking the AWS JSON protocol (DynamoDB, Secrets Manager: a POST whose `X-Amz-Target`
 * names the action), for `AWS_ENDPOINT_URL` or a client's `endpoint`. `answer` gives each request its reply
 * from the target; every request is recorded with its target and headers, and each answer carries a
 * request id `REQ<n>` (n counts the requests), as the SDK reads it into `$metadata` and X-Ray.
 */
export class FakeJsonAws {
  readonly requests: { target: string; headers: IncomingHttpHeaders; traceHeader: string }[] = [];
  private server: Server | undefined;
  endpoint = "";

  constructor(private readonly answer: (target: string) => JsonReply) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const target = String(req.headers["x-amz-target"] ?? "");
        this.requests.push({ target, headers: req.headers, traceHeader: String(req.headers["x-amzn-trace-id"] ?? "") });
        const reply = this.answer(target);
        const body = JSON.stringify(reply.body);
        res.writeHead(reply.status, {
          "content-type": target.startsWith("DynamoDB_") ? "application/x-amz-json-1.0" : "application/x-amz-json-1.1",
          "content-length": Buffer.byteLength(body),
          "x-amzn-requestid": `REQ${this.requests.length}`,
        });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
