//! `keyward key ...` against a running server: every subcommand, as a table and as JSON, and
//! exit statuses that say why a command failed.

use std::process::{Command, Output};

use keyward_e2e::{Db, Server, keyward_bin};
use serde_json::Value;

fn key(s: &Server, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["key"];
    all.extend_from_slice(args);
    keyward_e2e::cli(s, token, &all)
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_subcommand_against_a_running_server() {
    let s = Server::start(Db::Sqlite).await;
    let admin = s.admin.clone();
    let created = json(&key(
        &s,
        &admin,
        &["create", "--namespace", "cli", "--alias", "alias/cli", "--tag", "team=ops", "--output", "json"],
    ));
    let id = created["key_id"].as_str().unwrap().to_owned();
    assert_eq!(created["aliases"][0], "alias/cli");
    assert_eq!(created["tags"]["team"], "ops");

    let listed = text(&key(&s, &admin, &["list", "--namespace", "cli"]));
    assert!(listed.starts_with("KEY ID") && listed.contains(&id) && listed.contains("Enabled"), "{listed}");
    let described = text(&key(&s, &admin, &["describe", "alias/cli"]));
    assert!(described.contains(&id) && described.lines().any(|l| l.starts_with("key_state") && l.contains("Enabled")));

    let updated = json(&key(&s, &admin, &["update", &id, "--description", "from the CLI", "--output", "json"]));
    assert_eq!(updated["description"], "from the CLI");
    let armed = text(&key(&s, &admin, &["update", &id, "--on-use-while-pending", "cancel"]));
    assert!(armed.lines().any(|l| l.starts_with("on_use_while_pending") && l.ends_with("cancel")), "{armed}");
    assert!(armed.lines().any(|l| l.starts_with("deletion_canary_count") && l.ends_with('0')), "{armed}");
    assert_eq!(key(&s, &admin, &["update", &id, "--on-use-while-pending", "explode"]).status.code(), Some(2));
    assert_eq!(json(&key(&s, &admin, &["rotate", &id, "--output", "json"]))["primary_version"], 2);
    let versions = json(&key(&s, &admin, &["versions", &id, "--output", "json"]));
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    let table = text(&key(&s, &admin, &["versions", &id]));
    assert!(table.starts_with("VERSION") && table.lines().count() == 3, "{table}");
    let usage = json(&key(&s, &admin, &["usage", &id, "--days", "7", "--output", "json"]));
    assert_eq!((usage["days"].as_u64(), usage["recommended_min_decryption_version"].as_u64()), (Some(7), Some(2)));
    let table = text(&key(&s, &admin, &["usage", &id]));
    assert!(
        table.starts_with("VERSION") && table.contains("SAFE TO RETIRE") && table.contains("recommended"),
        "{table}"
    );
    let census = text(&key(&s, &admin, &["namespace-usage", "cli"]));
    assert!(census.starts_with("KEY ID") && census.contains(&id), "{census}");
    let refused = key(&s, &admin, &["usage", &id, "--days", "0"]);
    assert_eq!(refused.status.code(), Some(2), "days out of range is invalid input");
    assert_eq!(json(&key(&s, &admin, &["set-min-version", &id, "2", "--output", "json"]))["min_decryption_version"], 2);
    assert_eq!(json(&key(&s, &admin, &["disable", &id, "--output", "json"]))["key_state"], "Disabled");

    // Why a command failed is in its exit status, and the problem is printed.
    let refused = key(&s, &admin, &["rotate", &id]);
    assert_eq!(refused.status.code(), Some(2), "a disabled key cannot rotate: invalid for its state");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("KeyDisabled") && stderr.contains("request"), "{stderr}");
    assert_eq!(json(&key(&s, &admin, &["enable", &id, "--output", "json"]))["key_state"], "Enabled");
    let pending = json(&key(&s, &admin, &["schedule-deletion", &id, "--days", "7", "--output", "json"]));
    assert_eq!(pending["key_state"], "PendingDeletion");
    assert_eq!(json(&key(&s, &admin, &["cancel-deletion", &id, "--output", "json"]))["key_state"], "Disabled");
    assert_eq!(key(&s, &admin, &["schedule-deletion", &id, "--days", "3"]).status.code(), Some(2), "7-30 days");
    assert_eq!(key(&s, &admin, &["describe", "0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f"]).status.code(), Some(4));
    let bob = s.token("bob", &[]);
    assert_eq!(key(&s, &bob, &["describe", &id]).status.code(), Some(3), "denied");
    assert_eq!(key(&s, "not-a-token", &["list"]).status.code(), Some(3), "unauthenticated");
    let gone = Command::new(keyward_bin())
        .args(["key", "--server", "http://127.0.0.1:9", "--token", "x", "list"])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(5), "unreachable: retry later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_grants_data_keys_random_and_decisions_from_the_command_line() {
    let s = Server::start(Db::Sqlite).await;
    let admin = s.admin.clone();
    let id =
        json(&keyward_e2e::cli(&s, &admin, &["key", "create", "--namespace", "cli", "--output", "json"]))["key_id"]
            .as_str()
            .unwrap()
            .to_owned();

    let alias = json(&keyward_e2e::cli(&s, &admin, &["alias", "create", "alias/app", &id, "--output", "json"]));
    assert_eq!(alias["target_key_id"], id.as_str());
    let listed = text(&keyward_e2e::cli(&s, &admin, &["alias", "list", "--key", &id]));
    assert!(listed.starts_with("ALIAS NAME") && listed.contains("alias/app"), "{listed}");
    assert!(keyward_e2e::cli(&s, &admin, &["alias", "delete", "alias/app"]).status.success());
    assert_eq!(keyward_e2e::cli(&s, &admin, &["alias", "delete", "alias/app"]).status.code(), Some(4), "gone");

    let grant = json(&keyward_e2e::cli(
        &s,
        &admin,
        &[
            "grant",
            "create",
            &id,
            "Keyward::User::\"gina\"",
            "--operation",
            "Encrypt",
            "--context-equals",
            "app=web",
            "--output",
            "json",
        ],
    ));
    let grant_id = grant["grant_id"].as_str().unwrap().to_owned();
    let grants = text(&keyward_e2e::cli(&s, &admin, &["grant", "list", &id]));
    assert!(grants.contains(&grant_id) && grants.contains("gina"), "{grants}");
    let gina = s.token("gina", &[]);
    let decision = json(&keyward_e2e::cli(
        &s,
        &gina,
        &[
            "authorize",
            "ask",
            "Encrypt",
            &format!("Keyward::Key::\"{id}\""),
            "--context",
            "app=web",
            "--output",
            "json",
        ],
    ));
    assert_eq!(decision["decision"], "Allow", "{decision}");
    let other = json(&keyward_e2e::cli(
        &s,
        &gina,
        &["authorize", "ask", "Encrypt", &format!("Keyward::Key::\"{id}\""), "--context", "app=db", "--output", "json"],
    ));
    assert_eq!(other["decision"], "Deny", "the grant binds the context: {other}");
    assert!(keyward_e2e::cli(&s, &admin, &["grant", "revoke", &grant_id]).status.success());

    let dk = json(&keyward_e2e::cli(
        &s,
        &admin,
        &["data-key", "generate", &id, "--context", "table=orders", "--output", "json"],
    ));
    assert!(dk["plaintext"].is_string() && dk["ciphertext_blob"].is_string(), "{dk}");
    let blob_only =
        json(&keyward_e2e::cli(&s, &admin, &["data-key", "generate", &id, "--without-plaintext", "--output", "json"]));
    assert!(blob_only["plaintext"].is_null() && blob_only["ciphertext_blob"].is_string(), "{blob_only}");
    let random = json(&keyward_e2e::cli(
        &s,
        &admin,
        &["random", "generate", "--bytes", "16", "--namespace", "cli", "--output", "json"],
    ));
    assert_eq!(random["plaintext"].as_str().map(str::len), Some(24), "16 bytes in base64: {random}");
    assert_eq!(keyward_e2e::cli(&s, &admin, &["random", "generate", "--bytes", "5000"]).status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_audit_and_completion_from_the_command_line() {
    let s = Server::start(Db::Sqlite).await;
    let admin = s.admin.clone();
    let policies = text(&keyward_e2e::cli(&s, &admin, &["policy", "get"]));
    assert!(policies.starts_with("// policy set sha256:") && policies.contains("permit"), "{policies}");
    let as_json = json(&keyward_e2e::cli(&s, &admin, &["policy", "get", "--json"]));
    assert!(as_json["policies"].as_array().is_some_and(|p| !p.is_empty()));
    let reloaded = keyward_e2e::cli(&s, &admin, &["policy", "reload"]);
    assert!(reloaded.status.success(), "{}", String::from_utf8_lossy(&reloaded.stderr));
    assert!(String::from_utf8_lossy(&reloaded.stdout).starts_with("sha256:"));
    let bob = s.token("bob", &[]);
    assert_eq!(keyward_e2e::cli(&s, &bob, &["policy", "reload"]).status.code(), Some(3), "only admins reload");

    s.create_key("audited").await;
    let lines = text(&keyward_e2e::cli(&s, &admin, &["audit", "query", "--action", "CreateKey", "--limit", "5"]));
    let records: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!records.is_empty() && records.iter().all(|r| r["action"] == "CreateKey"), "{lines}");
    assert_eq!(keyward_e2e::cli(&s, &bob, &["audit", "query"]).status.code(), Some(3), "the trail is for auditors");

    // The token from a file, out of the process list.
    let file = s.data_dir.path().join("admin.token");
    let listed = Command::new(keyward_bin())
        .args(["key", "--server", &s.base, "--token-file", file.to_str().unwrap(), "list"])
        .env_remove("KEYWARD_TOKEN")
        .output()
        .unwrap();
    assert!(text(&listed).contains("audited"), "listed with the token from a file");

    // A named server from a profile file.
    let profiles = s.data_dir.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        format!("default = \"local\"\n[servers.local]\nurl = \"{}\"\ntoken_file = \"{}\"\n", s.base, file.display()),
    )
    .unwrap();
    let with_profile = |args: &[&str]| {
        Command::new(keyward_bin())
            .args(args)
            .env("KEYWARD_CONFIG_FILE", &profiles)
            .env_remove("KEYWARD_TOKEN")
            .env_remove("KEYWARD_SERVER")
            .output()
            .unwrap()
    };
    assert!(text(&with_profile(&["key", "list"])).contains("audited"), "the default profile");
    assert!(text(&with_profile(&["key", "--profile", "local", "list"])).contains("audited"), "a named profile");
    assert_eq!(with_profile(&["key", "--profile", "nope", "list"]).status.code(), Some(1), "an unknown profile");

    let verified = json(&keyward_e2e::cli(&s, &admin, &["audit", "verify", "--remote"]));
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(keyward_e2e::cli(&s, &bob, &["audit", "verify", "--remote"]).status.code(), Some(3));
    assert!(text(&keyward_e2e::cli(&s, &admin, &["man"])).contains(".TH keyward 1"), "a roff manual page");
    let pages = s.data_dir.path().join("man");
    assert!(keyward_e2e::cli(&s, &admin, &["man", "--dir", pages.to_str().unwrap()]).status.success());
    let create = std::fs::read_to_string(pages.join("keyward-key-create.1")).expect("a page per subcommand");
    assert!(create.contains(".TH keyward-key-create 1") && create.contains("namespace"), "{create}");
    for page in ["keyward.1", "keyward-audit-verify.1", "keyward-grant-create.1", "keyward-authorize.1"] {
        assert!(pages.join(page).is_file(), "{page}");
    }

    let script = text(&keyward_e2e::cli(&s, &admin, &["completion", "bash"]));
    assert!(script.contains("keyward") && script.contains("complete"), "a bash completion script");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_sign_verify_and_mac_from_the_command_line() {
    let s = Server::start(Db::Sqlite).await;
    let admin = s.admin.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.tar");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let file = file.to_str().unwrap();
    let created = json(&keyward_e2e::cli(
        &s,
        &admin,
        &["key", "create", "--namespace", "cli", "--spec", "ECC_NIST_P384", "--output", "json"],
    ));
    assert_eq!(
        (created["key_spec"].as_str(), created["key_usage"].as_str()),
        (Some("ECC_NIST_P384"), Some("SIGN_VERIFY"))
    );
    let id = created["key_id"].as_str().unwrap().to_owned();
    // The file is over 4096 bytes: its digest is signed.
    let sig =
        text(&keyward_e2e::cli(&s, &admin, &["sign", "create", &id, file, "--algorithm", "ECDSA_SHA_384", "--digest"]));
    let sig = sig.trim();
    let ok = keyward_e2e::cli(
        &s,
        &admin,
        &["sign", "verify", &id, file, "--signature", sig, "--algorithm", "ECDSA_SHA_384", "--digest"],
    );
    assert_eq!(text(&ok).trim(), "true");
    // The PEM verifies it with openssl, the bytes unchanged.
    let pem = text(&keyward_e2e::cli(&s, &admin, &["key", "public-key", &id]));
    let (pem_file, sig_file) = (dir.path().join("pub.pem"), dir.path().join("sig"));
    std::fs::write(&pem_file, &pem).unwrap();
    std::fs::write(&sig_file, keyward_e2e::unb64(sig)).unwrap();
    let openssl = Command::new("openssl")
        .args(["dgst", "-sha384", "-verify"])
        .arg(&pem_file)
        .arg("-signature")
        .arg(&sig_file)
        .arg(file)
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{}", String::from_utf8_lossy(&openssl.stderr));
    std::fs::write(dir.path().join("release.tar"), vec![8u8; 100_000]).unwrap();
    let bad = keyward_e2e::cli(
        &s,
        &admin,
        &["sign", "verify", &id, file, "--signature", sig, "--algorithm", "ECDSA_SHA_384", "--digest"],
    );
    assert_eq!(bad.status.code(), Some(1), "an invalid signature exits 1");
    // Without --digest the file is too large for a RAW message.
    let raw = keyward_e2e::cli(&s, &admin, &["sign", "create", &id, file, "--algorithm", "ECDSA_SHA_384"]);
    assert_eq!(raw.status.code(), Some(2), "{}", String::from_utf8_lossy(&raw.stderr));

    let hmac = json(&keyward_e2e::cli(
        &s,
        &admin,
        &["key", "create", "--namespace", "cli", "--spec", "HMAC_256", "--output", "json"],
    ));
    let hmac = hmac["key_id"].as_str().unwrap().to_owned();
    let body = dir.path().join("webhook.json");
    std::fs::write(&body, br#"{"event":"paid"}"#).unwrap();
    let body = body.to_str().unwrap();
    let mac = text(&keyward_e2e::cli(&s, &admin, &["sign", "mac", &hmac, body, "--algorithm", "HMAC_SHA_256"]));
    let ok = keyward_e2e::cli(
        &s,
        &admin,
        &["sign", "verify-mac", &hmac, body, "--mac", mac.trim(), "--algorithm", "HMAC_SHA_256"],
    );
    assert_eq!(text(&ok).trim(), "true");
    let wrong = keyward_e2e::cli(
        &s,
        &admin,
        &["sign", "verify-mac", &hmac, file, "--mac", mac.trim(), "--algorithm", "HMAC_SHA_256"],
    );
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "a file over 4096 bytes is refused: {}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

/// Bring your own key from the command line: `key import --material` wraps the file locally
/// and imports it; what is encrypted with it opens outside with the same material; the
/// material can be deleted and brought back; other material is refused (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn material_is_imported_deleted_and_reimported_from_the_command_line() {
    let s = Server::start(Db::Sqlite).await;
    let admin = s.admin.clone();
    let dir = tempfile::tempdir().unwrap();
    let material: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(37)).collect();
    let file = dir.path().join("aes.bin");
    std::fs::write(&file, &material).unwrap();
    let file = file.to_str().unwrap();
    let created = json(&key(
        &s,
        &admin,
        &["create", "--namespace", "cli", "--origin", "EXTERNAL", "--alias", "alias/byok", "--output", "json"],
    ));
    assert_eq!(created["key_state"], "PendingImport");
    let id = created["key_id"].as_str().unwrap().to_owned();
    let imported = json(&key(&s, &admin, &["import", "alias/byok", "--material", file, "--output", "json"]));
    assert_eq!((imported["key_state"].as_str(), imported["origin"].as_str()), (Some("Enabled"), Some("EXTERNAL")));
    let r = s.post(&format!("/v1/keys/{id}/encrypt"), serde_json::json!({"plaintext": keyward_e2e::b64(b"cli")})).await;
    let blob = keyward_e2e::unb64(&r.s("ciphertext_blob"));
    assert_eq!(crate::import::open_outside(&material, &blob, &[]), b"cli");
    // The parameters for wrapping elsewhere: a PEM and a token.
    let params = text(&key(&s, &admin, &["import-parameters", &id, "--wrapping-key-spec", "RSA_2048"]));
    assert!(params.contains("-----BEGIN PUBLIC KEY-----") && params.contains("import_token: "), "{params}");
    let deleted = json(&key(&s, &admin, &["delete-imported-material", &id, "--output", "json"]));
    assert_eq!(deleted["key_state"], "PendingImport");
    let other = dir.path().join("other.bin");
    std::fs::write(&other, [9u8; 32]).unwrap();
    let refused = key(&s, &admin, &["import", &id, "--material", other.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    let back = json(&key(&s, &admin, &["import", &id, "--material", file, "--output", "json"]));
    assert_eq!(back["key_state"], "Enabled");
    let r = s.post("/v1/decrypt", serde_json::json!({"ciphertext_blob": keyward_e2e::b64(&blob)})).await;
    assert_eq!(keyward_e2e::unb64(&r.s("plaintext")), b"cli");
    let neither = key(&s, &admin, &["import", &id]);
    assert_eq!(neither.status.code(), Some(2));
}
