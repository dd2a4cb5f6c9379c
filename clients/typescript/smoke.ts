// Keyward's TypeScript client (openapi-typescript types + openapi-fetch) against a live server:
// create a key, GenerateDataKey, Decrypt, and an error with its problem+json code.
// Usage: node smoke.js BASE_URL TOKEN
import createClient from "openapi-fetch";
import type { paths } from "./keyward.js";

// With `dry_run` an operation answers its decision instead of its usual body.
type DryRun = { decision: string };
function done<T>(data: T | undefined, what: string): Exclude<T, DryRun> {
  if (data === undefined || (typeof data === "object" && data !== null && "decision" in data)) {
    throw new Error(`${what}: no result: ${JSON.stringify(data)}`);
  }
  return data as Exclude<T, DryRun>;
}

function check(ok: boolean, what: string, detail?: unknown): void {
  if (!ok) {
    throw new Error(`${what}: ${JSON.stringify(detail)}`);
  }
}

async function main(baseUrl: string, token: string): Promise<void> {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
  const created = await client.POST("/v1/keys", { body: { namespace: "clients", description: "typescript" } });
  check(created.response.status === 201, "CreateKey", created.error);
  const keyId = done(created.data, "CreateKey").key_id;
  const context = { app: "typescript" };
  const dk = await client.POST("/v1/keys/{key}/generate-data-key", {
    params: { path: { key: keyId } },
    body: { encryption_context: context },
  });
  const dataKey = done(dk.data, "GenerateDataKey");
  check(Buffer.from(dataKey.plaintext, "base64").length === 32, "a 32-byte data key");
  const back = await client.POST("/v1/decrypt", {
    body: { ciphertext_blob: dataKey.ciphertext_blob, encryption_context: context },
  });
  const opened = done(back.data, "Decrypt");
  check(opened.plaintext === dataKey.plaintext && opened.key_id === keyId, "Decrypt", back.error);
  const wrong = await client.POST("/v1/decrypt", {
    body: { ciphertext_blob: dataKey.ciphertext_blob, encryption_context: { app: "other" } },
  });
  check(wrong.response.status === 400 && wrong.error?.code === "InvalidCiphertext", "a wrong context", wrong.error);
  console.log(`typescript client: ok (key ${keyId})`);
}

main(process.argv[2], process.argv[3]).catch((e) => {
  console.error(e);
  process.exit(1);
});
