// Keyward's TypeScript client (openapi-typescript types + openapi-fetch) against a live server:
// create a key, GenerateDataKey, Decrypt, an error with its problem+json code, and a signing
// key and an HMAC key (Sign, Verify, GetPublicKey, GenerateMac, VerifyMac).
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
  await signing(client);
  console.log(`typescript client: ok (key ${keyId})`);
}

async function signing(client: ReturnType<typeof createClient<paths>>): Promise<void> {
  const created = await client.POST("/v1/keys", { body: { namespace: "clients", key_spec: "ECC_NIST_EDWARDS25519" } });
  const ed = done(created.data, "CreateKey Ed25519");
  check(ed.key_usage === "SIGN_VERIFY", "an Ed25519 key signs", ed);
  const message = Buffer.from("signed by the typescript client").toString("base64");
  const signed = await client.POST("/v1/keys/{key}/sign", {
    params: { path: { key: ed.key_id } },
    body: { message, signing_algorithm: "ED25519_SHA_512" },
  });
  const signature = done(signed.data, "Sign").signature;
  check(Buffer.from(signature, "base64").length === 64, "a 64-byte Ed25519 signature");
  const verified = await client.POST("/v1/keys/{key}/verify", {
    params: { path: { key: ed.key_id } },
    body: { message, signature, signing_algorithm: "ED25519_SHA_512" },
  });
  check(done(verified.data, "Verify").signature_valid === true, "Verify", verified.error);
  const publicKey = await client.GET("/v1/keys/{key}/public-key", { params: { path: { key: ed.key_id } } });
  check(done(publicKey.data, "GetPublicKey").key_spec === "ECC_NIST_EDWARDS25519", "GetPublicKey", publicKey.error);
  const hmac = done((await client.POST("/v1/keys", { body: { namespace: "clients", key_spec: "HMAC_384" } })).data, "CreateKey HMAC");
  const mac = await client.POST("/v1/keys/{key}/generate-mac", {
    params: { path: { key: hmac.key_id } },
    body: { message, mac_algorithm: "HMAC_SHA_384" },
  });
  const tag = done(mac.data, "GenerateMac").mac;
  const checked = await client.POST("/v1/keys/{key}/verify-mac", {
    params: { path: { key: hmac.key_id } },
    body: { message, mac: tag, mac_algorithm: "HMAC_SHA_384" },
  });
  check(done(checked.data, "VerifyMac").mac_valid === true, "VerifyMac", checked.error);
}

main(process.argv[2], process.argv[3]).catch((e) => {
  console.error(e);
  process.exit(1);
});
