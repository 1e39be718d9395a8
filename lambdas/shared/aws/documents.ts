import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { DEFAULTS } from "../constants.js";
import { DocumentError, TransientError } from "../errors.js";

/** S3 access the agent needs: read documents (bounded), write results and saved orders. */
export class DocumentStore {
  constructor(
    private readonly s3: S3Client,
    private readonly maxBytes: number = DEFAULTS.maxDocumentBytes,
  ) {}

  /** Reads an object; a missing object or one over the size limit is a DocumentError naming it. */
  async get(bucket: string, key: string, versionId?: string): Promise<Uint8Array> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      if ((head.ContentLength ?? 0) > this.maxBytes) {
        throw new DocumentError(
          `document s3://${bucket}/${key} is ${head.ContentLength} bytes; the limit is ${this.maxBytes} bytes`,
        );
      }
      const res = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      if (!res.Body) throw new DocumentError(`document s3://${bucket}/${key} has no body`);
      return await res.Body.transformToByteArray();
    } catch (err) {
      throw classifyS3Error(err, `s3://${bucket}/${key}`);
    }
  }

  async put(bucket: string, key: string, body: string, contentType = "application/json"): Promise<void> {
    try {
      await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
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
