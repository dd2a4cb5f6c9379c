// Keyward's TypeScript client (openapi-typescript types + openapi-fetch) against a live server:
// create a key, GenerateDataKey, Decrypt, an error with its problem+json code, and a signing
// key and an HMAC key (Sign, Verify, GetPublicKey, GenerateMac, VerifyMac), and imported key
// material wrapped with node's crypto (GetParametersForImport, ImportKeyMaterial,
// DeleteImportedKeyMaterial).
// Usage: node smoke.js BASE_URL TOKEN
import { constants, createHmac, publicEncrypt, randomBytes } from "node:crypto";
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
  await importing(client);
  await governance(client);
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

async function importing(client: ReturnType<typeof createClient<paths>>): Promise<void> {
  const created = await client.POST("/v1/keys", {
    body: { namespace: "clients", key_spec: "HMAC_256", origin: "EXTERNAL" },
  });
  const key = done(created.data, "CreateKey EXTERNAL");
  check(key.key_state === "PendingImport" && key.origin === "EXTERNAL", "a key waiting for material", key);
  const params = await client.POST("/v1/keys/{key}/import-parameters", {
    params: { path: { key: key.key_id } },
    body: { wrapping_algorithm: "RSAES_OAEP_SHA_256", wrapping_key_spec: "RSA_2048" },
  });
  const p = done(params.data, "GetParametersForImport");
  const material = randomBytes(32);
  const wrapped = publicEncrypt(
    { key: p.public_key_pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    material,
  );
  const imported = await client.POST("/v1/keys/{key}/import", {
    params: { path: { key: key.key_id } },
    body: { import_token: p.import_token, encrypted_key_material: wrapped.toString("base64") },
  });
  check(done(imported.data, "ImportKeyMaterial").key_state === "Enabled", "ImportKeyMaterial", imported.error);
  const message = Buffer.from("imported").toString("base64");
  const mac = await client.POST("/v1/keys/{key}/generate-mac", {
    params: { path: { key: key.key_id } },
    body: { message, mac_algorithm: "HMAC_SHA_256" },
  });
  const expected = createHmac("sha256", material).update("imported").digest("base64");
  check(done(mac.data, "GenerateMac").mac === expected, "the MAC of the imported material", mac.data);
  const deleted = await client.DELETE("/v1/keys/{key}/import", { params: { path: { key: key.key_id } } });
  check(done(deleted.data, "DeleteImportedKeyMaterial").key_state === "PendingImport", "deleted", deleted.error);
}

// GetKeyUsage, the deletion canary cancelling a deletion (UpdateKey's on_use_while_pending), and a namespace default key.
async function governance(client: ReturnType<typeof createClient<paths>>): Promise<void> {
  const created = await client.POST("/v1/keys", { body: { namespace: "clients" } });
  const key = done(created.data, "CreateKey").key_id;
  const path = { params: { path: { key } } };
  const dk = await client.POST("/v1/keys/{key}/generate-data-key", { ...path, body: {} });
  done(dk.data, "GenerateDataKey");
  const usage = await client.GET("/v1/keys/{key}/usage", { params: { path: { key }, query: { days: 7 } } });
  const report = done(usage.data, "GetKeyUsage");
  check(report.days === 7 && report.versions[0]?.encryptions === 1, "GetKeyUsage", report);
  const updated = await client.PATCH("/v1/keys/{key}", { ...path, body: { on_use_while_pending: "cancel" } });
  check(done(updated.data, "UpdateKey").on_use_while_pending === "cancel", "UpdateKey", updated.error);
  const pending = await client.POST("/v1/keys/{key}/schedule-deletion", { ...path, body: {} });
  // 200 with the key, or 202 when the deletion waits for approval (none configured here).
  const scheduled = done(pending.data, "ScheduleKeyDeletion");
  check(pending.response.status === 200 && "key_state" in scheduled && scheduled.key_state === "PendingDeletion", "scheduled", scheduled);
  const tried = await client.POST("/v1/keys/{key}/generate-data-key", { ...path, body: {} });
  check(tried.response.status === 409 && tried.error?.code === "KeyPendingDeletion", "refused", tried.error);
  const after = await client.GET("/v1/keys/{key}", path);
  const m = done(after.data, "DescribeKey");
  check(m.key_state === "Disabled" && m.deletion_canary_count === 1, "the canary cancelled the deletion", m);
  // No quorum is configured here: nothing waits for approval.
  const waiting = await client.GET("/v1/approvals", { params: { query: { state: "Pending" } } });
  check(done(waiting.data, "ListApprovals").approvals.length === 0, "ListApprovals", waiting.error);
  // The namespace's default key is made on first use.
  const fresh = await client.POST("/v1/keys/{key}/generate-data-key", {
    params: { path: { key: "alias/keyward/clients-ts" } },
    body: {},
  });
  const made = await client.GET("/v1/keys/{key}", { params: { path: { key: done(fresh.data, "default key").key_id } } });
  check(done(made.data, "DescribeKey").aliases[0] === "alias/keyward/clients-ts", "the default key", made.data);
}

main(process.argv[2], process.argv[3]).catch((e) => {
  console.error(e);
  process.exit(1);
});
