//! The committed OpenAPI document is what the code generates, and names every operation.

use std::process::Command;

#[test]
fn committed_document_matches_the_code() {
    let out = Command::new(keyward_e2e::keyward_bin()).arg("openapi").output().expect("keyward openapi");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    let path = keyward_e2e::repo_root().join("openapi/keyward.openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/keyward.openapi.json is stale: run `cargo run -p keyward-server -- openapi > openapi/keyward.openapi.json`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("json");
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("path item").values() {
            if let Some(id) = op["operationId"].as_str() {
                ids.push(id.to_owned());
            }
        }
    }
    for id in [
        "CreateKey",
        "ListKeys",
        "DescribeKey",
        "UpdateKey",
        "EnableKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "RotateKey",
        "ListKeyVersions",
        "SetMinDecryptionVersion",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
        "CreateAlias",
        "DeleteAlias",
        "ListAliases",
    ] {
        assert!(ids.iter().any(|i| i == id), "operation {id} missing from the OpenAPI document");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
