//! Finishing touches on the generated OpenAPI document: the server entry, every error response
//! spelled out as `application/problem+json` with its codes, a description on every response
//! (generated clients need them), and examples for the main operations.

use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

/// Error statuses every `/v1` operation can answer, with the codes behind each.
const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "`InvalidRequest` (malformed or out-of-range input), `InvalidCiphertext` (any decryption failure) or `InvalidKeyUsage` (the key's usage or spec does not allow the operation or algorithm)",
    ),
    ("401", "`Unauthenticated`: no valid bearer token"),
    ("403", "`AccessDenied`: the policies do not allow it"),
    ("404", "`NotFound`: no such key, alias or grant"),
    ("409", "`KeyDisabled`, `KeyPendingDeletion` or `Conflict` (the key's state forbids it)"),
    ("413", "`PayloadTooLarge`: the body or plaintext is over its limit"),
    ("422", "`UnsupportedOperation`: the key's backend cannot do this"),
    (
        "429",
        "`RateLimited`: the server is at its in-flight limit, the audit trail's queue is full, or a quota (per principal, key or namespace) is spent; retry after `Retry-After`",
    ),
    ("500", "`Internal`: a fault on the server (details only in its log and audit record)"),
    (
        "503",
        "`AuditUnavailable` (nothing ran: the trail cannot record), `KeyUnavailable` or `BackendUnavailable` (the backend is down); retry after `Retry-After`",
    ),
];

fn examples(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        "CreateKey" => json!({"namespace": "payments", "description": "orders database", "alias": "alias/payments-db"}),
        "Encrypt" => json!({"plaintext": "c2VjcmV0", "encryption_context": {"table": "orders"}}),
        "Decrypt" => json!({"ciphertext_blob": "S1cB...", "encryption_context": {"table": "orders"}}),
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            json!({"key_pair_spec": "ECC_NIST_P256", "encryption_context": {"purpose": "device-identity"}})
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            json!({"key_spec": "AES_256", "encryption_context": {"table": "orders"}})
        }
        "ReEncrypt" => json!({"ciphertext_blob": "S1cB...", "source_encryption_context": {"table": "orders"},
                              "destination_key_id": "alias/payments-db-2024", "destination_encryption_context": {"table": "orders"}}),
        "GenerateRandom" => json!({"number_of_bytes": 32, "namespace": "payments"}),
        "Sign" => json!({"message": "aGVsbG8=", "message_type": "RAW", "signing_algorithm": "ECDSA_SHA_256"}),
        "Verify" => json!({"message": "aGVsbG8=", "message_type": "RAW", "signature": "MEUCIQ...",
                           "signing_algorithm": "ECDSA_SHA_256"}),
        "GenerateMac" => json!({"message": "aGVsbG8=", "mac_algorithm": "HMAC_SHA_256"}),
        "VerifyMac" => json!({"message": "aGVsbG8=", "mac": "q83v...", "mac_algorithm": "HMAC_SHA_256"}),
        _ => return None,
    })
}

/// Every operation takes `dry_run` and then answers 200 with the decision instead of its usual
/// body (DESIGN: Dry run), so the 200 answer is either.
fn document_dry_run(responses: &mut serde_json::Map<String, Value>) {
    let dry = json!({"$ref": "#/components/schemas/DryRunResponse"});
    let schema = responses.get("200").and_then(|r| r.pointer("/content/application~1json/schema")).cloned();
    match schema {
        Some(s) if s == dry => {}
        Some(s) => {
            responses.insert(
                "200".into(),
                json!({"description": "Success; with `dry_run`, the authorization decision instead (nothing was done)",
                       "content": {"application/json": {"schema": {"oneOf": [s, dry]}}}}),
            );
        }
        None => {
            responses.insert(
                "200".into(),
                json!({"description": "With `dry_run`: the authorization decision (nothing was done)",
                       "content": {"application/json": {"schema": dry}}}),
            );
        }
    }
}

/// OpenAPI links from CreateKey's answer to every operation on `{key}`, so stateful clients
/// and fuzzers can follow a created key.
fn link_created_keys(v: &mut Value) {
    let mut targets = serde_json::Map::new();
    if let Some(paths) = v["paths"].as_object() {
        for (path, item) in paths {
            if !path.contains("{key}") {
                continue;
            }
            for op in item.as_object().into_iter().flat_map(|o| o.values()) {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    targets.insert(
                        id.to_owned(),
                        json!({"operationId": id, "parameters": {"key": "$response.body#/key_id"}}),
                    );
                }
            }
        }
    }
    if let Some(created) = v.pointer_mut("/paths/~1v1~1keys/post/responses/201") {
        created["links"] = Value::Object(targets);
    }
}

fn describe(status: &str) -> &'static str {
    match status {
        "200" => "Success",
        "201" => "Created",
        "204" => "Done; no body",
        "4XX" => "Another client error (problem+json)",
        "5XX" => "Another server error (problem+json)",
        _ => "See the operation's description",
    }
}

/// Applies the finishing touches.
pub fn finish(doc: OpenApi) -> OpenApi {
    let Ok(mut v) = serde_json::to_value(&doc) else { return doc };
    let original = doc;
    v["servers"] = json!([{"url": "http://127.0.0.1:8420", "description": "`keyward serve` on its dev default; use your deployment's URL"}]);
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    if let Some(paths) = v["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for op in item.values_mut() {
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
                if path.starts_with("/v1/") {
                    document_dry_run(responses);
                    for (status, codes) in ERRORS {
                        responses.insert((*status).into(), json!({"description": codes, "content": problem.clone()}));
                    }
                    for range in ["4XX", "5XX"] {
                        if responses.contains_key(range) {
                            responses.insert(
                                range.into(),
                                json!({"description": describe(range), "content": problem.clone()}),
                            );
                        }
                    }
                }
                for (status, response) in responses.iter_mut() {
                    if response.get("description").is_none_or(|d| d.as_str().is_none_or(str::is_empty)) {
                        response["description"] = json!(describe(status));
                    }
                }
                let id = op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned();
                if let (Some(example), Some(media)) =
                    (examples(&id), op.pointer_mut("/requestBody/content/application~1json"))
                {
                    media["example"] = example;
                }
            }
        }
    }
    // The document round-trips through serde; should that ever fail, serve it untouched (the
    // drift test would show the difference).
    link_created_keys(&mut v);
    serde_json::from_value(v).unwrap_or(original)
}
