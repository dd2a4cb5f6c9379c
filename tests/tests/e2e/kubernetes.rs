//! The Kubernetes KMS v2 plugin as kube-apiserver uses it: Status (healthy, `v2`, a key id that
//! changes on rotation), Encrypt (a ciphertext and key id within the apiserver's limits),
//! Decrypt of ciphertexts made before a rotation, the socket's mode, refusals, audit records
//! named by the request uid, and Status following the key's backend.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use keyward_e2e::{Db, Hsm, Server};
use keyward_kubernetes::proto::key_management_service_client::KeyManagementServiceClient;
use keyward_kubernetes::proto::{DecryptRequest, EncryptRequest, StatusRequest, StatusResponse};
use serde_json::json;
use tonic::transport::Channel;

async fn client(socket: PathBuf) -> KeyManagementServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::try_from("http://kms.sock")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
            }
        }))
        .await
        .unwrap();
    KeyManagementServiceClient::new(channel)
}

struct Plugin {
    s: Server,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(db: Db, extra: &str, env: &[(&str, &str)], create: serde_json::Value) -> Plugin {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kms.sock");
    let toml = format!(
        "{extra}\n[kubernetes]\nsocket = \"{}\"\nkey = \"alias/kubernetes-secrets\"\ngroups = [\"kubernetes\"]\n",
        socket.display()
    );
    let s = Server::start_with_config_env(db, &toml, &[], env).await;
    let r = s.post("/v1/keys", create).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.s("key_id");
    let r =
        s.call("PUT", "/v1/aliases/alias%2Fkubernetes-secrets", &s.admin, Some(json!({"target_key_id": key}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    Plugin { s, socket, _dir: dir }
}

async fn status(c: &mut KeyManagementServiceClient<Channel>) -> StatusResponse {
    c.status(StatusRequest {}).await.unwrap().into_inner()
}

async fn the_plugin_answers_as_the_apiserver_expects(db: Db) {
    let p = start(db, "", &[], json!({"namespace": "kubernetes"})).await;
    let mode = std::fs::metadata(&p.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is the owner's only");
    let mut c = client(p.socket.clone()).await;

    let st = status(&mut c).await;
    assert_eq!((st.version.as_str(), st.healthz.as_str()), ("v2", "ok"));
    assert!(!st.key_id.is_empty() && st.key_id.len() <= 1024);

    // Encrypt a 32-byte seed; the answer fits the apiserver's limits and names the current key id.
    let seed: Vec<u8> = (0..32).collect();
    let uid = uuid::Uuid::new_v4().to_string();
    let enc = c.encrypt(EncryptRequest { plaintext: seed.clone(), uid: uid.clone() }).await.unwrap().into_inner();
    assert!(!enc.ciphertext.is_empty() && enc.ciphertext.len() <= 1024);
    assert_eq!(enc.key_id, st.key_id);
    assert!(enc.annotations.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= 32 * 1024);
    let dec = c
        .decrypt(DecryptRequest {
            ciphertext: enc.ciphertext.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            key_id: enc.key_id.clone(),
            annotations: enc.annotations.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dec.plaintext, seed);

    // Rotation: Status's key id changes (the apiserver then makes a new seed); what was encrypted
    // before still decrypts.
    let r = p.s.post("/v1/keys/alias%2Fkubernetes-secrets/rotate", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = status(&mut c).await;
    assert_eq!(rotated.healthz, "ok");
    assert_ne!(rotated.key_id, st.key_id, "the key id changes on rotation");
    let old = c
        .decrypt(DecryptRequest {
            ciphertext: enc.ciphertext.clone(),
            uid: "u-old".into(),
            key_id: enc.key_id.clone(),
            annotations: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.plaintext, seed);
    let enc2 = c.encrypt(EncryptRequest { plaintext: seed.clone(), uid: "u-new".into() }).await.unwrap().into_inner();
    assert_eq!(enc2.key_id, rotated.key_id);

    // Refusals: a tampered or oversized ciphertext, a blob made through the REST API for the
    // same key (another context), an empty seed.
    let mut tampered = enc.ciphertext.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let key = p.s.get("/v1/keys/alias%2Fkubernetes-secrets").await.s("key_id");
    let rest = p.s.post(&format!("/v1/keys/{key}/encrypt"), json!({"plaintext": "AAAA"})).await.s("ciphertext_blob");
    let rest = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, rest).unwrap();
    for bad in [tampered, vec![1u8; 2048], rest] {
        let e = c
            .decrypt(DecryptRequest {
                ciphertext: bad,
                uid: "u-bad".into(),
                key_id: enc.key_id.clone(),
                annotations: Default::default(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    }
    let e = c.encrypt(EncryptRequest { plaintext: vec![], uid: "u-empty".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);

    // Each call is a record named by the apiserver's uid, as the plugin's principal.
    let records = p.s.get("/v1/audit?action=Encrypt&limit=100").await;
    let record = records.body["records"].as_array().unwrap().iter().find(|r| r["request_id"] == uid.as_str()).cloned();
    let record = record.unwrap_or_else(|| panic!("no record for uid {uid}: {}", records.body));
    assert_eq!(record["interface"], "kubernetes");
    assert_eq!(record["principal"], r#"Keyward::Service::"kubernetes""#);
    assert_eq!(record["outcome"], "Success");

    // A disabled key: Status says so, Encrypt is refused.
    assert_eq!(p.s.post(&format!("/v1/keys/{key}/disable"), json!({})).await.status, 200);
    assert_ne!(status(&mut c).await.healthz, "ok");
    let e = c.encrypt(EncryptRequest { plaintext: seed, uid: "u-off".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_keys_backend() {
    let Some(hsm) = Hsm::private() else { return };
    let env = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let extra = format!(
        "default_backend = \"software\"\n[[backends]]\nname = \"software\"\nkind = \"software\"\n{}",
        hsm.backend_toml("hsm")
    );
    let p = start(Db::Sqlite, &extra, &env, json!({"namespace": "kubernetes", "backend": "hsm"})).await;
    let mut c = client(p.socket.clone()).await;
    assert_eq!(status(&mut c).await.healthz, "ok");

    hsm.take_away();
    let lost = Instant::now();
    while status(&mut c).await.healthz == "ok" {
        assert!(lost.elapsed() < Duration::from_secs(2), "Status still ok 2 s after the token went away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lost.elapsed() < Duration::from_secs(2));

    hsm.bring_back();
    let back = Instant::now();
    while status(&mut c).await.healthz != "ok" {
        assert!(back.elapsed() < Duration::from_secs(15), "Status not ok 15 s after the token came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let enc = c.encrypt(EncryptRequest { plaintext: vec![7; 32], uid: "u-back".into() }).await.unwrap().into_inner();
    assert!(!enc.ciphertext.is_empty(), "works again without a restart");
}

keyward_e2e::on_both_databases!(the_plugin_answers_as_the_apiserver_expects);
