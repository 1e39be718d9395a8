import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";

/** S3 in a map for the loop's unit tests (behind the real DocumentStore): every PutObject is recorded per key. */
export function memoryS3() {
  const objects = new Map<string, Uint8Array>();
  const puts: string[] = [];
  const client = {
    async send(command: unknown) {
      const input = (command as { input: { Bucket: string; Key: string; Body?: string | Uint8Array } }).input;
      const id = `${input.Bucket}/${input.Key}`;
      if (command instanceof PutObjectCommand) {
        puts.push(id);
        const body = input.Body ?? new Uint8Array();
        objects.set(id, typeof body === "string" ? new TextEncoder().encode(body) : body);
        return {};
      }
      const body = objects.get(id);
      if (!body) throw Object.assign(new Error(`no ${id}`), { name: "NoSuchKey" });
      if (command instanceof HeadObjectCommand) return { ContentLength: body.byteLength };
      if (command instanceof GetObjectCommand) return { Body: { transformToByteArray: async () => body } };
      throw new Error(`memoryS3: ${(command as object).constructor.name} is not emulated`);
    },
  };
  return { objects, puts, client: client as unknown as S3Client };
}
