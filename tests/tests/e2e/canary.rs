//! The deletion canary over HTTP: using a key pending deletion is refused as before and raises
//! an alarm: a `DeletionCanary` audit record naming who tried, a count on the key, and a signed
//! webhook, retried until accepted and never holding the request; with
//! `on_use_while_pending = cancel` the deletion is cancelled. Refused callers trip nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_databases!(canaries_are_recorded_counted_and_signed, cancel_on_use_brings_the_key_back_disabled);

const SECRET: &str = "canary-webhook-secret-0123456789";

/// One delivery the receiver took: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Delivery {
    headers: BTreeMap<String, String>,
    body: String,
}

/// A webhook receiver on loopback that answers each delivery with the next status of its
/// script (then 200), or never answers when `hang` is set.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    async fn start(script: Vec<u16>, hang: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/keyward", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let sink = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let (sink, script) = (sink.clone(), script.clone());
                tokio::spawn(async move {
                    let Some(delivery) = read_request(&mut conn).await else { return };
                    sink.lock().unwrap().push(delivery);
                    if hang {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                    }
                    let status = script.lock().unwrap().next().unwrap_or(200);
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, got }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` deliveries have arrived.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let start = Instant::now();
        loop {
            let got = self.deliveries();
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{} of {n} deliveries arrived: {got:?}", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Delivery> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: BTreeMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Delivery { headers, body: String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string() })
}

/// The receiver's check: `t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">` under the shared secret.
fn signature_holds(d: &Delivery) -> bool {
    let Some(sig) = d.headers.get("x-keyward-signature") else { return false };
    let mut parts = sig.split(',');
    let (Some(t), Some(v1)) =
        (parts.next().and_then(|p| p.strip_prefix("t=")), parts.next().and_then(|p| p.strip_prefix("v1=")))
    else {
        return false;
    };
    let Ok(mac) = hex::decode(v1) else { return false };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    aws_lc_rs::hmac::verify(&key, format!("{t}.{}", d.body).as_bytes(), &mac).is_ok()
}

async fn server(db: Db, receiver: &Receiver, extra: &str) -> Server {
    let toml = format!(
        "[notifications]\nwebhook_url = \"{}\"\nwebhook_secret_env = \"KEYWARD_TEST_WEBHOOK_SECRET\"\nretry_base_ms = 50\n{extra}",
        receiver.url
    );
    Server::start_with_config_env(db, &toml, &[], &[("KEYWARD_TEST_WEBHOOK_SECRET", SECRET)]).await
}

async fn describe(s: &Server, key: &str) -> Value {
    let r = s.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn canaries(s: &Server, key: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/audit?action=DeletionCanary&key_id={key}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["records"].as_array().cloned().unwrap_or_default()
}

async fn canaries_are_recorded_counted_and_signed(db: Db) {
    // The first delivery is refused (503): the notifier retries.
    let receiver = Receiver::start(vec![503], false).await;
    let s = server(db, &receiver, "").await;
    let key = s.create_key("canary").await;
    let ops = s.token("ops", &["admins"]);
    let encrypt = async |token: &str| {
        s.call("POST", &format!("/v1/keys/{key}/encrypt"), token, Some(json!({"plaintext": b64(b"c")}))).await
    };
    let blob = encrypt(&ops).await.s("ciphertext_blob");
    assert_eq!(canaries(&s, &key).await.len(), 0, "no canary before the deletion is scheduled");
    let scheduled = s.post(&format!("/v1/keys/{key}/schedule-deletion"), json!({"pending_window_days": 7})).await;
    assert_eq!(scheduled.status, 200, "{}", scheduled.body);
    assert_eq!(scheduled.body["on_use_while_pending"], "alert");
    assert_eq!(scheduled.body["deletion_canary_count"], 0);

    // ops decrypts: refused as before (409 KeyPendingDeletion), and the canary is raised.
    let refused = s.call("POST", "/v1/decrypt", &ops, Some(json!({"ciphertext_blob": blob}))).await;
    assert_eq!((refused.status, refused.code()), (409, "KeyPendingDeletion"), "{}", refused.body);
    let records = canaries(&s, &key).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["principal"], "Keyward::User::\"ops\"");
    assert_eq!(records[0]["details"]["kind"], "deletion_canary");
    assert_eq!(records[0]["details"]["attempted_action"], "Decrypt");
    let d = describe(&s, &key).await;
    assert_eq!((d["key_state"].as_str(), d["deletion_canary_count"].as_u64()), (Some("PendingDeletion"), Some(1)));
    assert!(d["deletion_canary_last_at"].is_string(), "{d}");

    // The webhook: refused once, delivered on the retry, the same delivery id both times,
    // signed with the shared secret, naming the key and who tried.
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].headers.get("x-keyward-delivery"), got[1].headers.get("x-keyward-delivery"));
    assert!(got.iter().all(signature_holds), "{got:?}");
    assert_eq!(got[1].headers.get("x-keyward-event").map(String::as_str), Some("deletion_canary"));
    let event: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(
        (event["key_id"].as_str(), event["principal"].as_str()),
        (Some(key.as_str()), Some("Keyward::User::\"ops\""))
    );
    assert_eq!((event["action"].as_str(), event["deletion_cancelled"].as_bool()), (Some("Decrypt"), Some(false)));
    // A body edited in transit no longer matches its signature.
    let forged = Delivery { body: got[1].body.replace("ops", "eve"), ..got[1].clone() };
    assert!(!signature_holds(&forged));

    // The AWS API: KMSInvalidStateException, and a second canary.
    let access = s
        .post(
            "/v1/access-keys",
            json!({"principal": "Keyward::User::\"ops\"", "groups": ["admins"], "default_namespace": "canary"}),
        )
        .await;
    assert_eq!(access.status, 201, "{}", access.body);
    let kms = keyward_e2e::kms_client(&s, &access.body);
    let err = kms.encrypt().key_id(&key).plaintext(aws_sdk_kms::primitives::Blob::new(b"c".to_vec())).send().await;
    let err = err.expect_err("the key is pending deletion");
    assert_eq!(aws_sdk_kms::error::ProvideErrorMetadata::code(&err), Some("KMSInvalidStateException"), "{err:?}");
    assert_eq!(describe(&s, &key).await["deletion_canary_count"], 2);
    receiver.wait_for(3).await;

    // Refused callers trip nothing: another tenant (403), no credentials (401), a bad token.
    let stranger = s.token("mallory", &[]);
    assert_eq!(encrypt(&stranger).await.status, 403);
    assert_eq!(encrypt("").await.status, 401);
    assert_eq!(encrypt("not-a-jwt").await.status, 401);
    assert_eq!(describe(&s, &key).await["deletion_canary_count"], 2);
    assert_eq!(canaries(&s, &key).await.len(), 2);

    // A bad `on_use_while_pending` is refused and changes nothing.
    let bad =
        s.call("PATCH", &format!("/v1/keys/{key}"), &s.admin, Some(json!({"on_use_while_pending": "explode"}))).await;
    assert_eq!((bad.status, bad.code()), (400, "InvalidRequest"), "{}", bad.body);
    let bad =
        s.call("PATCH", &format!("/v1/keys/{key}"), &stranger, Some(json!({"on_use_while_pending": "cancel"}))).await;
    assert_eq!(bad.status, 403);
    assert_eq!(describe(&s, &key).await["on_use_while_pending"], "alert");
    // Alert never cancels: the key is still pending deletion.
    assert_eq!(describe(&s, &key).await["key_state"], "PendingDeletion");
}

async fn cancel_on_use_brings_the_key_back_disabled(db: Db) {
    // A receiver that never answers: requests must not wait for it.
    let receiver = Receiver::start(Vec::new(), true).await;
    let s = server(db, &receiver, "timeout_ms = 60000\n").await;
    let key = s.create_key("canary").await;
    let r =
        s.call("PATCH", &format!("/v1/keys/{key}"), &s.admin, Some(json!({"on_use_while_pending": "cancel"}))).await;
    assert_eq!((r.status, r.body["on_use_while_pending"].as_str()), (200, Some("cancel")), "{}", r.body);
    assert_eq!(s.post(&format!("/v1/keys/{key}/schedule-deletion"), json!({})).await.status, 200);
    let ops = s.token("ops", &["admins"]);
    let path = format!("/v1/keys/{key}/generate-data-key");
    let attempt = s.call("POST", &path, &ops, Some(json!({})));
    let refused =
        tokio::time::timeout(Duration::from_secs(20), attempt).await.expect("the request did not wait for the webhook");
    assert_eq!(refused.code(), "KeyPendingDeletion", "{}", refused.body);
    let d = describe(&s, &key).await;
    assert_eq!((d["key_state"].as_str(), d["deletion_date"].is_null()), (Some("Disabled"), true), "{d}");
    assert_eq!(d["deletion_canary_count"], 1);
    // The cancellation is the system's, naming the attempt that triggered it.
    let r = s.get(&format!("/v1/audit?action=CancelKeyDeletion&key_id={key}")).await;
    let records = r.body["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 1, "{}", r.body);
    assert_eq!(records[0]["principal"], "Keyward::Service::\"keyward:system\"");
    assert_eq!(records[0]["details"]["trigger"], "deletion_canary");
    let canary = canaries(&s, &key).await;
    assert_eq!(records[0]["details"]["canary_request_id"], canary[0]["request_id"]);
    // The webhook was tried (and is still hanging), reporting the cancellation.
    let got = receiver.wait_for(1).await;
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["deletion_cancelled"], true);
    // The key is usable again once enabled.
    assert_eq!(s.post(&format!("/v1/keys/{key}/enable"), json!({})).await.status, 200);
    let ok = s.call("POST", &format!("/v1/keys/{key}/encrypt"), &ops, Some(json!({"plaintext": b64(b"c")}))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn a_bad_notifications_table_stops_the_server() {
    for (toml, expected) in [
        ("[notifications]\nwebhook_url = \"http://example.com/h\"\nwebhook_secret_env = \"PATH\"\n", "https"),
        ("[notifications]\nwebhook_url = \"https://example.com/h\"\n", "webhook_secret"),
        ("[notifications]\nwebhook_url = \"not a url\"\nwebhook_secret_env = \"PATH\"\n", "webhook_url"),
        ("[notifications]\nwebhook_secret_env = \"PATH\"\n", "without `webhook_url`"),
        (
            "[notifications]\nwebhook_url = \"https://example.com/h\"\nwebhook_secret_env = \"KEYWARD_TEST_UNSET_VAR\"\n",
            "is not set",
        ),
        (
            "[notifications]\nwebhook_url = \"https://example.com/h\"\nwebhook_secret_env = \"PATH\"\nmax_attempts = 0\n",
            "max_attempts",
        ),
        ("[notifications]\nwebhook = \"https://example.com/h\"\n", "webhook"),
    ] {
        let stderr = keyward_e2e::refuses_to_start(toml);
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
}
