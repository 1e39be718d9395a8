import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";

/** One AWS API call as IAM sees it: who (the function), which action, on which resource ARN. */
export interface AwsCall {
  readonly fn: string;
  readonly service: string;
  readonly action: string;
  readonly resource: string;
  /** The request's `X-Amzn-Trace-Id`, when it carried one. */
  readonly traceHeader?: string;
}

/** A failure the proxy answers instead of forwarding, for one function and service (fault injection). */
export interface Fault {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

export interface RecorderOptions {
  readonly region: string;
  readonly account: string;
  /** Where each service's requests go, by SigV4 service name (`dynamodb`, `s3`, `ses`, `states`). */
  readonly upstreams: Readonly<Record<string, string>>;
  /** The state machine ARN a task token belongs to (what IAM checks for SendTask*). */
  readonly stateMachineArnOf: (taskToken: string) => string;
  /** SecretString per secret ARN: Secrets Manager is answered here (there is no emulator for it). */
  readonly secrets: ReadonlyMap<string, string>;
}

/**
 * A recording proxy in front of the emulators, the one `AWS_ENDPOINT_URL` every bundle is given. It
 * reads who calls from the SigV4 credential scope (each function runs with its own access key id,
 * and the scope names the service), derives the IAM action and the resource ARN from the request as
 * AWS would (X-Amz-Target + body for the JSON protocols, method + path + query for S3 and SES v2),
 * records it, and forwards the bytes unchanged to the emulator.
 */
export class Recorder {
  readonly calls: AwsCall[] = [];
  /** Requests the proxy could not map to an action (reported, never silently dropped). */
  readonly unmapped: string[] = [];
  private readonly faults = new Map<string, Fault>();
  private server: Server | undefined;
  url = "";

  constructor(private readonly opts: RecorderOptions) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`recorder: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Every call of `fn` to `service` is answered with `fault` until cleared. */
  inject(fn: string, service: string, fault: Fault | undefined): void {
    if (fault) this.faults.set(`${fn}/${service}`, fault);
    else this.faults.delete(`${fn}/${service}`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\//.exec(String(req.headers.authorization ?? ""));
    const fn = scope?.[1] ?? "unsigned";
    const service = scope?.[3] ?? "unknown";
    for (const call of this.describe(fn, service, req, body)) this.calls.push(call);
    const fault = this.faults.get(`${fn}/${service}`);
    if (fault) {
      res.writeHead(fault.status, { "content-type": fault.contentType }).end(fault.body);
      return;
    }
    if (service === "secretsmanager") return this.answerSecret(req, body, res);
    const upstream = this.opts.upstreams[service];
    if (!upstream) {
      res.writeHead(501, { "content-type": "text/plain" }).end(`no emulator for ${service}`);
      return;
    }
    // s3rver has no versions: a versioned read goes to the current object (the key is what IAM checks).
    const url = new URL(req.url ?? "/", upstream);
    url.searchParams.delete("versionId");
    const target = new URL(upstream);
    const forwarded = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers: { ...req.headers, host: target.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forwarded.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502).end(err.message);
    });
    forwarded.end(body);
  }

  private answerSecret(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const input = JSON.parse(body.toString() || "{}") as { SecretId?: string };
    const value = this.opts.secrets.get(input.SecretId ?? "");
    res.setHeader("content-type", "application/x-amz-json-1.1");
    if (value === undefined || req.headers["x-amz-target"] !== "secretsmanager.GetSecretValue") {
      res
        .writeHead(400)
        .end(JSON.stringify({ __type: "ResourceNotFoundException", message: `no secret ${input.SecretId ?? "?"}` }));
      return;
    }
    res.writeHead(200).end(
      JSON.stringify({
        ARN: input.SecretId,
        Name: input.SecretId,
        SecretString: value,
        VersionId: randomBytes(8).toString("hex"),
      }),
    );
  }

  /** The IAM action(s) and resource ARN(s) AWS would authorize for this request. */
  private describe(fn: string, service: string, req: IncomingMessage, body: Buffer): AwsCall[] {
    const { region, account } = this.opts;
    const target = String(req.headers["x-amz-target"] ?? "");
    const json = (): Record<string, unknown> => {
      try {
        return JSON.parse(body.toString() || "{}") as Record<string, unknown>;
      } catch {
        return {};
      }
    };
    const trace = req.headers["x-amzn-trace-id"];
    const traceHeader = typeof trace === "string" ? { traceHeader: trace } : {};
    const call = (action: string, resource: string): AwsCall => ({ fn, service, action, resource, ...traceHeader });
    switch (service) {
      case "dynamodb": {
        const op = target.split(".")[1] ?? "";
        const input = json() as { TableName?: string; IndexName?: string };
        const table = `arn:aws:dynamodb:${region}:${account}:table/${input.TableName ?? "?"}`;
        return [call(`dynamodb:${op}`, input.IndexName ? `${table}/index/${input.IndexName}` : table)];
      }
      case "secretsmanager": {
        const input = json() as { SecretId?: string };
        return [call(`secretsmanager:${target.split(".")[1] ?? ""}`, input.SecretId ?? "?")];
      }
      case "states": {
        const op = target.split(".")[1] ?? "";
        const input = json() as { taskToken?: string; stateMachineArn?: string; executionArn?: string };
        const resource = input.taskToken
          ? this.opts.stateMachineArnOf(input.taskToken)
          : (input.stateMachineArn ?? input.executionArn ?? "*");
        return [call(`states:${op}`, resource)];
      }
      case "ses": {
        const path = new URL(req.url ?? "/", "http://x").pathname;
        if (req.method === "POST" && path === "/v2/email/outbound-emails") {
          const input = json() as { FromEmailAddress?: string; Destination?: { ToAddresses?: string[] } };
          const identity = (name: string) => `arn:aws:ses:${region}:${account}:identity/${name}`;
          const from = (input.FromEmailAddress ?? "?").replace(/^.*<([^>]+)>.*$/, "$1");
          // The sender's domain (what an operator verifies once), and, as in the SES sandbox, each recipient.
          return [
            call("ses:SendEmail", identity(from.slice(from.lastIndexOf("@") + 1))),
            ...(input.Destination?.ToAddresses ?? []).map((to) => call("ses:SendEmail", identity(to))),
          ];
        }
        this.unmapped.push(`${fn} ses ${req.method} ${path}`);
        return [];
      }
      case "s3": {
        const url = new URL(req.url ?? "/", "http://x");
        const [, bucket = "", ...rest] = url.pathname.split("/");
        const key = decodeURIComponent(rest.join("/"));
        const versioned = url.searchParams.has("versionId");
        const method = req.method ?? "GET";
        if (key === "") {
          if (method === "GET") return [call("s3:ListBucket", `arn:aws:s3:::${bucket}`)];
          this.unmapped.push(`${fn} s3 ${method} bucket ${bucket}`);
          return [];
        }
        const object = `arn:aws:s3:::${bucket}/${key}`;
        if (method === "GET" || method === "HEAD")
          return [call(versioned ? "s3:GetObjectVersion" : "s3:GetObject", object)];
        if (method === "PUT") return [call("s3:PutObject", object)];
        if (method === "DELETE") return [call(versioned ? "s3:DeleteObjectVersion" : "s3:DeleteObject", object)];
        this.unmapped.push(`${fn} s3 ${method} ${object}`);
        return [];
      }
      default:
        this.unmapped.push(`${fn} ${service} ${req.method} ${req.url}`);
        return [];
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
