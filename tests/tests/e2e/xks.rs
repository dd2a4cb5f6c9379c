//! The AWS KMS External Key Store proxy, from its specification: every operation, every error
//! it names, SigV4 with each store's own credentials (rotation, replay, skew), the request
//! metadata as the Cedar request, the audit records, and curl's `--aws-sigv4` as a client
//! nobody here wrote.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use keyward_api::aws::sigv4;
use keyward_e2e::{Db, Server};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PREFIX: &str = "example/uri/path/prefix";
const AKID: &str = "AKIAXKSTESTKEYONEAAAA";
const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH";
const AKID2: &str = "AKIAXKSTESTKEYTWOAAAA";
const SECRET2: &str = "secondsecretsecondsecretsecondsecretsecond1";
const OTHER_AKID: &str = "AKIAXKSOTHERSTOREAAAA";
const OTHER_SECRET: &str = "thirdsecretthirdsecretthirdsecretthirdsecret";

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap()
}

struct Proxy {
    s: Server,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["errorName"].as_str().unwrap_or("")
    }
}

impl Proxy {
    async fn start(db: Db) -> Self {
        Self::start_with(db, "", json!({"namespace": "aws"}), &[]).await
    }

    /// A proxy with `extra` configuration before the stores, its key made by `create`.
    async fn start_with(db: Db, extra: &str, create: Value, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("xks-1");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let toml = format!(
            r#"{extra}
[[xks.stores]]
path_prefix = "{PREFIX}"
credentials = [{{ access_key_id = "{AKID}", secret_file = "{}" }},
               {{ access_key_id = "{AKID2}", secret_env = "XKS_TEST_SECRET_2" }}]
keys = {{ "foo" = "alias/xks-foo", "gone" = "alias/xks-nothing", "ext" = "alias/xks-ext" }}

[[xks.stores]]
path_prefix = "other"
group = "not-xks"
credentials = [{{ access_key_id = "{OTHER_AKID}", secret_env = "XKS_TEST_SECRET_3" }}]
keys = {{ "foo" = "alias/xks-foo" }}
"#,
            secret_file.display()
        );
        let mut env = env.to_vec();
        env.extend([("XKS_TEST_SECRET_2", SECRET2), ("XKS_TEST_SECRET_3", OTHER_SECRET)]);
        let s = Server::start_with_config_env(db, &toml, &[], &env).await;
        drop(dir);
        let r = s.post("/v1/keys", create).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let key = r.s("key_id");
        let r = s.call("PUT", "/v1/aliases/alias%2Fxks-foo", &s.admin, Some(json!({"target_key_id": key}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        Self { s, http: reqwest::Client::new() }
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        cred: Option<(&str, &str)>,
        at: DateTime<Utc>,
    ) -> Answer {
        let url = format!("{}{path}", self.s.base);
        let host = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let amz_date = at.format("%Y%m%dT%H%M%SZ").to_string();
        let mut req = self
            .http
            .request(method.parse().unwrap(), &url)
            .header("content-type", "application/json")
            .header("x-amz-date", &amz_date)
            .body(body.to_vec());
        if let Some((akid, secret)) = cred {
            let request = sigv4::Request { method, path, query: "", body };
            let auth = sigv4::authorization(
                akid,
                secret,
                "us-east-1",
                "kms-xks-proxy",
                request,
                &[("host", &host), ("x-amz-date", &amz_date)],
            )
            .unwrap();
            req = req.header("authorization", auth);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.raw("POST", path, body.to_string().as_bytes(), Some((AKID, SECRET)), Utc::now()).await
    }

    async fn key_op(&self, id: &str, op: &str, body: Value) -> Answer {
        self.post(&format!("/{PREFIX}/kms/xks/v1/keys/{id}/{op}"), &body).await
    }
}

fn metadata(op: &str, request_id: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": op,
        "kmsRequestId": request_id,
        "kmsViaService": "ebs",
    })
}

fn encrypt_body(plaintext: &[u8], aad: Option<&[u8]>, cdiv: bool) -> Value {
    let mut body = json!({
        "requestMetadata": metadata("Encrypt", &uuid::Uuid::new_v4().to_string()),
        "plaintext": b64(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(aad) = aad {
        body["additionalAuthenticatedData"] = json!(b64(aad));
    }
    if cdiv {
        body["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
    }
    body
}

fn decrypt_body(encrypted: &Value, aad: Option<&[u8]>) -> Value {
    let mut body = json!({
        "requestMetadata": metadata("Decrypt", &uuid::Uuid::new_v4().to_string()),
        "ciphertext": encrypted["ciphertext"],
        "ciphertextMetadata": encrypted["ciphertextMetadata"],
        "initializationVector": encrypted["initializationVector"],
        "authenticationTag": encrypted["authenticationTag"],
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(aad) = aad {
        body["additionalAuthenticatedData"] = json!(b64(aad));
    }
    body
}

async fn xks_round_trips_rotates_and_refuses_what_it_should(db: Db) {
    let p = Proxy::start(db).await;

    // GetKeyMetadata.
    let r = p.key_op("foo", "metadata", json!({"requestMetadata": metadata("CreateKey", "r-1")})).await;
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}))
    );

    // Encrypt 4300 bytes with 8 KiB of AAD and a CDIV; decrypt it back.
    let plaintext: Vec<u8> = (0..4300u32).map(|i| (i % 251) as u8).collect();
    let aad = vec![7u8; 8192];
    let enc = p.key_op("foo", "encrypt", encrypt_body(&plaintext, Some(&aad), true)).await;
    assert_eq!(enc.status, 200, "{}", enc.body);
    let (ct, iv, tag, md) = (
        unb64(&enc.body["ciphertext"]),
        unb64(&enc.body["initializationVector"]),
        unb64(&enc.body["authenticationTag"]),
        unb64(&enc.body["ciphertextMetadata"]),
    );
    assert_eq!((ct.len(), iv.len(), tag.len()), (plaintext.len(), 12, 16));
    assert!(md.len() <= 20);
    let cdiv: Vec<u8> = Sha256::new()
        .chain_update(&aad)
        .chain_update(&md)
        .chain_update(&iv)
        .chain_update(&ct)
        .chain_update(&tag)
        .finalize()
        .to_vec();
    assert_eq!(unb64(&enc.body["ciphertextDataIntegrityValue"]), cdiv, "the CDIV over what was returned");
    let dec = p.key_op("foo", "decrypt", decrypt_body(&enc.body, Some(&aad))).await;
    assert_eq!(dec.status, 200, "{}", dec.body);
    assert_eq!(unb64(&dec.body["plaintext"]), plaintext);

    // Without AAD and without a CDIV.
    let plain = p.key_op("foo", "encrypt", encrypt_body(b"Hello World!", None, false)).await;
    assert!(plain.body.get("ciphertextDataIntegrityValue").is_none());
    assert_eq!(
        unb64(&p.key_op("foo", "decrypt", decrypt_body(&plain.body, None)).await.body["plaintext"]),
        b"Hello World!"
    );

    // Every part of the ciphertext is bound: AAD, metadata, IV, tag, ciphertext.
    let mut tampered = Vec::new();
    tampered.push(decrypt_body(&enc.body, Some(b"other aad")));
    tampered.push(decrypt_body(&enc.body, None));
    for field in ["ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata"] {
        let mut changed = enc.body.clone();
        let mut bytes = unb64(&enc.body[field]);
        bytes[0] ^= 1;
        changed[field] = json!(b64(&bytes));
        tampered.push(decrypt_body(&changed, Some(&aad)));
    }
    // Bytes moved from the AAD into the metadata.
    let small = p.key_op("foo", "encrypt", encrypt_body(b"moved", Some(b"ab"), false)).await;
    let mut moved = small.body.clone();
    moved["ciphertextMetadata"] = json!(b64(&[&b"b"[..], &unb64(&small.body["ciphertextMetadata"])].concat()));
    tampered.push(decrypt_body(&moved, Some(b"a")));
    for body in tampered {
        let r = p.key_op("foo", "decrypt", body).await;
        assert_eq!((r.status, r.error()), (400, "InvalidCiphertextException"), "{}", r.body);
    }
    // Ciphertexts made before a rotation still decrypt; new ones name the new version.
    let key = p.s.get("/v1/keys/alias%2Fxks-foo").await.s("key_id");
    assert_eq!(p.s.post(&format!("/v1/keys/{key}/rotate"), json!({})).await.status, 200);
    let dec = p.key_op("foo", "decrypt", decrypt_body(&enc.body, Some(&aad))).await;
    assert_eq!(unb64(&dec.body["plaintext"]), plaintext);
    let v2 = p.key_op("foo", "encrypt", encrypt_body(b"after", None, false)).await;
    assert_ne!(v2.body["ciphertextMetadata"], enc.body["ciphertextMetadata"]);

    // A disabled key: metadata says so, and it refuses to encrypt.
    assert_eq!(p.s.post(&format!("/v1/keys/{key}/disable"), json!({})).await.status, 200);
    let r = p.key_op("foo", "metadata", json!({"requestMetadata": metadata("DescribeKey", "r-2")})).await;
    assert_eq!(r.body["keyStatus"], "DISABLED");
    let r = p.key_op("foo", "encrypt", encrypt_body(b"x", None, false)).await;
    assert_eq!((r.status, r.error()), (400, "InvalidStateException"));
    assert_eq!(p.s.post(&format!("/v1/keys/{key}/enable"), json!({})).await.status, 200);

    // Unknown keys and paths; GET; bad input.
    let r = p.key_op("nope", "encrypt", encrypt_body(b"x", None, false)).await;
    assert_eq!((r.status, r.error()), (404, "KeyNotFoundException"));
    let r = p.key_op("gone", "encrypt", encrypt_body(b"x", None, false)).await;
    assert_eq!((r.status, r.error()), (404, "KeyNotFoundException"), "an alias pointing nowhere");
    let r =
        p.post("/no/such/prefix/kms/xks/v1/health", &json!({"requestMetadata": metadata("KmsHealthCheck", "r")})).await;
    assert_eq!((r.status, r.error()), (404, "InvalidUriPathException"), "route before authentication");
    let r = p.post(&format!("/{PREFIX}/kms/xks/v1/keys/foo/sign"), &json!({})).await;
    assert_eq!((r.status, r.error()), (404, "InvalidUriPathException"));
    let r =
        p.raw("GET", &format!("/{PREFIX}/kms/xks/v1/keys/foo/metadata"), b"", Some((AKID, SECRET)), Utc::now()).await;
    assert_eq!(r.status, 405);
    for body in [
        json!({}),
        json!({"requestMetadata": {}}),
        json!({"requestMetadata": {"kmsRequestId": "", "kmsOperation": "Encrypt"}}),
        json!({"requestMetadata": metadata("Encrypt", "r"), "plaintext": "not base64!", "encryptionAlgorithm": "AES_GCM"}),
        json!({"requestMetadata": metadata("Encrypt", "r"), "plaintext": b64(b"x"), "encryptionAlgorithm": "RSA"}),
        json!({"requestMetadata": metadata("Encrypt", "r"), "plaintext": b64(b"x")}),
    ] {
        let r = p.key_op("foo", "encrypt", body.clone()).await;
        assert_eq!((r.status, r.error()), (400, "ValidationException"), "{body}");
    }
    let r = p.post(&format!("/{PREFIX}/kms/xks/v1/health"), &json!({})).await;
    assert_eq!((r.status, r.error()), (400, "ValidationException"), "requestMetadata is required on health too");
    let huge = encrypt_body(&vec![0u8; 70_000], None, false);
    let r = p.key_op("foo", "encrypt", huge).await;
    assert_eq!((r.status, r.error()), (501, "UnsupportedOperationException"));
    let r = p
        .raw("POST", &format!("/{PREFIX}/kms/xks/v1/keys/foo/encrypt"), b"{not json", Some((AKID, SECRET)), Utc::now())
        .await;
    assert_eq!((r.status, r.error()), (400, "ValidationException"));

    // Health: the fleet and every backend, deep-checked.
    let r = p
        .post(
            &format!("/{PREFIX}/kms/xks/v1/health"),
            &json!({"requestMetadata": {"kmsRequestId": "h-1", "kmsOperation": "KmsHealthCheck"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["xksProxyFleetSize"], 1);
    assert_eq!(r.body["xksProxyVendor"], "Keyward");
    let fleet = r.body["ekmFleetDetails"].as_array().unwrap();
    assert!(
        !fleet.is_empty() && fleet.len() <= 10 && fleet.iter().all(|e| e["healthStatus"] == "ACTIVE"),
        "{}",
        r.body
    );
    // Health is exempt from policies but recorded, under AWS KMS's request id.
    let all = p.s.get("/v1/audit?limit=1000").await;
    let health = all.body["records"].as_array().unwrap().iter().find(|r| r["request_id"] == "h-1").cloned();
    let health = health.unwrap_or_else(|| panic!("no record for the health check: {}", all.body));
    assert_eq!((health["action"].as_str(), health["interface"].as_str()), (Some("HealthCheck"), Some("xks")));
    assert_eq!(health["principal"], format!("Keyward::Service::\"xks-store:{PREFIX}\""));

    // Every key call is audited under AWS KMS's request id, as the AWS principal.
    let r = p.key_op("foo", "metadata", json!({"requestMetadata": metadata("DescribeKey", "trace-me-42")})).await;
    assert_eq!(r.status, 200);
    let records = p.s.get("/v1/audit?action=DescribeKey&limit=1000").await;
    let record = records.body["records"].as_array().unwrap().iter().find(|r| r["request_id"] == "trace-me-42").cloned();
    let record = record.unwrap_or_else(|| panic!("no record for kmsRequestId: {}", records.body));
    assert_eq!(record["interface"], "xks");
    assert_eq!(record["principal"], r#"Keyward::Service::"arn:aws:iam::123456789012:user/Alice""#);
    assert_eq!(record["determining_policies"], json!(["xks-use"]));
}

async fn xks_refuses_bad_signatures_replays_and_other_stores(db: Db) {
    let p = Proxy::start(db).await;
    let path = format!("/{PREFIX}/kms/xks/v1/keys/foo/metadata");
    let body = json!({"requestMetadata": metadata("DescribeKey", "a-1")}).to_string();
    let body = body.as_bytes();
    let before = p.s.audit_count().await;
    let refusals = [
        p.raw("POST", &path, body, None, Utc::now()).await,
        p.raw("POST", &path, body, Some((AKID, "a-wrong-secret-a-wrong-secret-a-wrong-secret")), Utc::now()).await,
        p.raw("POST", &path, body, Some(("AKIAUNKNOWNKEYIDAAAAA", SECRET)), Utc::now()).await,
        // Another store's credentials sign only for that store.
        p.raw("POST", &path, body, Some((OTHER_AKID, OTHER_SECRET)), Utc::now()).await,
        // Outside the five minutes of allowed skew.
        p.raw("POST", &path, body, Some((AKID, SECRET)), Utc::now() - Duration::minutes(6)).await,
        p.raw("POST", &path, body, Some((AKID, SECRET)), Utc::now() + Duration::minutes(6)).await,
    ];
    for (i, r) in refusals.iter().enumerate() {
        assert_eq!((r.status, r.error()), (401, "AuthenticationFailedException"), "case {i}: {}", r.body);
    }
    // Either credential of a store works (rotation), each signature once only.
    let at = Utc::now();
    assert_eq!(p.raw("POST", &path, body, Some((AKID2, SECRET2)), at).await.status, 200);
    let replay = p.raw("POST", &path, body, Some((AKID2, SECRET2)), at).await;
    assert_eq!((replay.status, replay.error()), (401, "AuthenticationFailedException"), "a replayed signature");
    // Each refusal was audited as refused, and changed nothing.
    let after = p.s.audit_count().await;
    assert_eq!(after - before, 8, "six refusals, one answer, one replay: each recorded");
    let refused = p.s.get("/v1/audit?action=DescribeKey&limit=1000").await;
    let outcomes: Vec<&str> = refused.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["interface"] == "xks")
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "Unauthenticated").count(), 7, "{outcomes:?}");

    // The other store's principals are in another group, which no policy lets use keys.
    let other =
        p.raw("POST", "/other/kms/xks/v1/keys/foo/metadata", body, Some((OTHER_AKID, OTHER_SECRET)), Utc::now()).await;
    assert_eq!((other.status, other.error()), (403, "AccessDeniedException"));

    // curl's own SigV4 (a client nobody here wrote) signs requests the proxy accepts.
    let url = format!("{}/{PREFIX}/kms/xks/v1/keys/foo/encrypt", p.s.base);
    let data = encrypt_body(b"from curl", None, true).to_string();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy", "--user", &format!("{AKID}:{SECRET}")])
        .args(["-H", "Content-Type: application/json", "--data", &data, &url])
        .output()
        .expect("curl");
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("curl: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(answer["ciphertext"].is_string() && answer["ciphertextDataIntegrityValue"].is_string(), "{answer}");
    let dec = p.key_op("foo", "decrypt", decrypt_body(&answer, None)).await;
    assert_eq!(unb64(&dec.body["plaintext"]), b"from curl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_on_the_hsm_and_on_a_listener_of_its_own() {
    let (Some(hsm), Some(kms)) = (keyward_e2e::Hsm::private(), keyward_e2e::Kms::shared()) else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let extra = format!(
        "default_backend = \"software\"\n[[backends]]\nname = \"software\"\nkind = \"software\"\n{}{}\n[xks]\nlisten = \"127.0.0.1:{port}\"\n",
        hsm.backend_toml("hsm"),
        kms.backend_toml("aws"),
    );
    let hsm_env = hsm.env();
    let mut env: Vec<(&str, &str)> = hsm_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend(keyward_e2e::KMS_CREDENTIALS);
    let mut p = Proxy::start_with(Db::Sqlite, &extra, json!({"namespace": "aws", "backend": "hsm"}), &env).await;
    // A key in an external KMS cannot do raw AES-GCM: the key does not support the operation.
    let r = p.s.post("/v1/keys", json!({"namespace": "aws", "backend": "aws"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ext = r.s("key_id");
    let r = p.s.call("PUT", "/v1/aliases/alias%2Fxks-ext", &p.s.admin, Some(json!({"target_key_id": ext}))).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Raw AES-GCM in the token: encrypt and decrypt through the XKS listener alone.
    p.s.base = format!("http://127.0.0.1:{port}");
    let aad = b"project=nile,department=marketing";
    let enc = p.key_op("foo", "encrypt", encrypt_body(b"Hello World!", Some(aad), true)).await;
    assert_eq!(enc.status, 200, "{}", enc.body);
    let dec = p.key_op("foo", "decrypt", decrypt_body(&enc.body, Some(aad))).await;
    assert_eq!(unb64(&dec.body["plaintext"]), b"Hello World!");
    let mut bad = enc.body.clone();
    bad["authenticationTag"] = json!(b64(&[0u8; 16]));
    let r = p.key_op("foo", "decrypt", decrypt_body(&bad, Some(aad))).await;
    assert_eq!((r.status, r.error()), (400, "InvalidCiphertextException"));
    let r = p.key_op("ext", "encrypt", encrypt_body(b"x", None, false)).await;
    assert_eq!((r.status, r.error()), (400, "InvalidKeyUsageException"), "{}", r.body);

    // The token goes away: its key answers DependencyTimeoutException, health says UNAVAILABLE;
    // it comes back without a restart.
    hsm.take_away();
    let lost = std::time::Instant::now();
    loop {
        let r = p.key_op("foo", "encrypt", encrypt_body(b"x", None, false)).await;
        if r.status == 503 {
            assert_eq!(r.error(), "DependencyTimeoutException", "{}", r.body);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(lost.elapsed() < std::time::Duration::from_secs(2), "still served 2 s after the token went away");
    }
    hsm.bring_back();
    let back = std::time::Instant::now();
    while p.key_op("foo", "encrypt", encrypt_body(b"x", None, false)).await.status != 200 {
        assert!(back.elapsed() < std::time::Duration::from_secs(20), "the token's key did not come back");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    // That listener serves XKS and a load balancer's health check, nothing else.
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/healthz", p.s.base)).send().await.unwrap().status(), 200);
    let r = http.get(format!("{}/v1/keys", p.s.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["errorName"], "InvalidUriPathException");
}

keyward_e2e::on_both_databases!(
    xks_round_trips_rotates_and_refuses_what_it_should,
    xks_refuses_bad_signatures_replays_and_other_stores
);
