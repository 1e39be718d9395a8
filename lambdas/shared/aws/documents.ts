import type { S3Client } from "@aws-sdk/client-s3";
import { DEFAULTS } from "../constants.js";
import { DocumentError, TransientError } from "../errors.js";

/**
 * An S3 client, or how to get one on first use. The deployed functions pass the latter (runtime.ts): the
 * S3 client and its commands are then a chunk read by the first call that touches a document, so a
 * function that never does (finalize, the approval functions, most tool calls) does not load it at init.
 */
export type S3Source = S3Client | (() => Promise<S3Client>);

/** The client and the command classes, both imported on first use (cached by the module loader). */
async function s3Of(source: S3Source) {
  const [client, commands] = await Promise.all([
    typeof source === "function" ? source() : source,
    import("@aws-sdk/client-s3"),
  ]);
  return { client, ...commands };
}

/** S3 access the agent needs: read documents (bounded), write results and saved orders. */
export class DocumentStore {
  constructor(
    private readonly s3: S3Source,
    private readonly maxBytes: number = DEFAULTS.maxDocumentBytes,
  ) {}

  /** Reads an object; a missing object or one over the size limit is a DocumentError naming it. */
  async get(bucket: string, key: string, versionId?: string): Promise<Uint8Array> {
    const { client, HeadObjectCommand, GetObjectCommand } = await s3Of(this.s3);
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      if ((head.ContentLength ?? 0) > this.maxBytes) {
        throw new DocumentError(
          `document s3://${bucket}/${key} is ${head.ContentLength} bytes; the limit is ${this.maxBytes} bytes`,
        );
      }
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      if (!res.Body) throw new DocumentError(`document s3://${bucket}/${key} has no body`);
      return await res.Body.transformToByteArray();
    } catch (err) {
      throw classifyS3Error(err, `s3://${bucket}/${key}`);
    }
  }

  async put(bucket: string, key: string, body: string, contentType = "application/json"): Promise<void> {
    const { client, PutObjectCommand } = await s3Of(this.s3);
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
    } catch (err) {
      throw classifyS3Error(err, `s3://${bucket}/${key}`);
    }
  }
}

function classifyS3Error(err: unknown, where: string): Error {
  if (err instanceof DocumentError) return err;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string };
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (e.name === "NoSuchKey" || e.name === "NotFound" || status === 404) {
    return new DocumentError(`document ${where} does not exist`, { cause: err });
  }
  if (status === 429 || status >= 500 || e.name === "SlowDown" || e.name === "TimeoutError") {
    return new TransientError(`S3 ${e.name ?? "error"} on ${where}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A key that may have been URL-encoded on the way (`%XX` escapes, `+` for a space). */
const LOOKS_ENCODED = /%[0-9A-Fa-f]{2}|\+/;

/**
 * The object key an S3 event names, as stored. S3's notification events carry keys URL-encoded
 * (a space as `+`, non-ASCII as `%XX`); EventBridge's `detail.object.key` is documented without
 * saying so, so both are accepted: the key as given wins when such an object exists, otherwise the
 * decoded key is used when that one exists. Plain keys cost no extra request.
 */
export async function storedKeyOf(s3: S3Source, bucket: string, key: string, versionId?: string): Promise<string> {
  if (!LOOKS_ENCODED.test(key)) return key;
  const { client, HeadObjectCommand } = await s3Of(s3);
  let decoded: string;
  try {
    decoded = decodeURIComponent(key.replaceAll("+", " "));
  } catch {
    return key; // not valid percent-encoding: it can only be the literal key
  }
  if (decoded === key) return key;
  const exists = async (k: string) => {
    try {
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: k, VersionId: versionId }));
      return true;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) return false;
      throw classifyS3Error(err, `s3://${bucket}/${k}`);
    }
  };
  if (await exists(key)) return key;
  return (await exists(decoded)) ? decoded : key;
}
