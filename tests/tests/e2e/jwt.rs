//! Production issuers (RS256 from a PEM file, ES256 from a JWKS file, EdDSA from a JWKS URL,
//! HS256 from a secret file) and the JWT attack suite: every forged or malformed token is
//! refused with 401 and the same body, and no refused call reaches Cedar or a backend.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use keyward_e2e::{Db, JsonServer, Server, repo_root};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/jwt").join(name)).expect("fixture")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn jwks(keys: &[(&str, &EncodingKey, Algorithm)]) -> String {
    let keys = keys
        .iter()
        .map(|(kid, key, alg)| {
            let mut jwk = Jwk::from_encoding_key(key, *alg).expect("jwk");
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).expect("jwks")
}

struct Keys {
    rsa: EncodingKey,
    ec: EncodingKey,
    other_ec: EncodingKey,
    ed: EncodingKey,
    hs: EncodingKey,
}

fn keys() -> Keys {
    Keys {
        rsa: EncodingKey::from_rsa_pem(&fixture("rsa.pem")).expect("rsa"),
        ec: EncodingKey::from_ec_pem(&fixture("ec.pem")).expect("ec"),
        other_ec: EncodingKey::from_ec_pem(&fixture("other-ec.pem")).expect("ec"),
        ed: EncodingKey::from_ed_pem(&fixture("ed.pem")).expect("ed"),
        hs: EncodingKey::from_secret(HS_SECRET.as_bytes()),
    }
}

const HS_SECRET: &str = "an-hs256-test-secret-of-at-least-32-bytes";

fn claims(iss: &str, sub: &str) -> Value {
    json!({"iss": iss, "aud": "keyward", "sub": sub, "nbf": now() - 5, "exp": now() + 600, "groups": ["admins"]})
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).expect("sign")
}

/// A token with a hand-written header and an arbitrary signature.
fn raw(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn config(dir: &std::path::Path, jwks_url: &str, keys: &Keys) -> String {
    let secret = dir.join("hs.secret");
    std::fs::write(&secret, HS_SECRET).expect("secret");
    let ec_jwks = dir.join("ec.jwks.json");
    std::fs::write(&ec_jwks, jwks(&[("ec-1", &keys.ec, Algorithm::ES256)])).expect("jwks");
    let rsa_pub = repo_root().join("tests/fixtures/jwt/rsa.pub.pem");
    format!(
        r#"
[auth]
leeway_seconds = 30

[[auth.issuers]]
issuer = "https://rs.test"
audience = "keyward"
algorithms = ["RS256"]
public_key_file = "{rsa}"

[[auth.issuers]]
issuer = "https://es.test"
audience = "keyward"
algorithms = ["ES256"]
jwks_file = "{ec}"
groups_claim = "roles"

[[auth.issuers]]
issuer = "https://ed.test"
audience = "keyward"
algorithms = ["EdDSA"]
jwks_url = "{url}"
jwks_refresh_seconds = 1

[[auth.issuers]]
issuer = "https://hs.test"
audience = "keyward"
algorithms = ["HS256"]
secret_file = "{secret}"
"#,
        rsa = rsa_pub.display(),
        ec = ec_jwks.display(),
        url = jwks_url,
        secret = secret.display(),
    )
}

fn without_request_id(mut body: Value) -> Value {
    body.as_object_mut().map(|o| o.remove("request_id"));
    body
}

#[tokio::test]
async fn production_issuers_and_the_attack_suite() {
    let keys = keys();
    let jwks_server = JsonServer::start(jwks(&[("ed-1", &keys.ed, Algorithm::EdDSA)]));
    let dir = tempfile::tempdir().unwrap();
    let s =
        Server::start_with_config(Db::Sqlite, &config(dir.path(), &jwks_server.url("/jwks.json"), &keys), &[]).await;

    // Every issuer's good token works, and the groups claim is per issuer.
    let rs = sign(Algorithm::RS256, None, &keys.rsa, &claims("https://rs.test", "rita"));
    let mut es_claims = claims("https://es.test", "eddie");
    es_claims["roles"] = json!(["admins"]);
    let es = sign(Algorithm::ES256, Some("ec-1"), &keys.ec, &es_claims);
    let ed = sign(Algorithm::EdDSA, Some("ed-1"), &keys.ed, &claims("https://ed.test", "edna"));
    let mut svc = claims("https://hs.test", "batch");
    svc["principal_type"] = json!("service");
    svc.as_object_mut().unwrap().remove("groups");
    let hs = sign(Algorithm::HS256, None, &keys.hs, &svc);
    for (name, token, owner) in [
        ("RS256 PEM", &rs, r#"Keyward::User::"rita""#),
        ("ES256 JWKS file", &es, r#"Keyward::User::"eddie""#),
        ("EdDSA JWKS URL", &ed, r#"Keyward::User::"edna""#),
        ("HS256 secret", &hs, r#"Keyward::Service::"batch""#),
    ] {
        let r = s.call("POST", "/v1/keys", token, Some(json!({"namespace": "admins"}))).await;
        // Admins may do anything; the service (no groups) is a member of no namespace group.
        if owner.contains("Service") {
            assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{name}: {}", r.body);
        } else {
            assert_eq!(r.status, 201, "{name}: {}", r.body);
            assert_eq!(r.body["owner"], owner, "{name}");
        }
    }
    // `groups` is not the ES issuer's groups claim: this principal has no groups.
    let es_plain = sign(Algorithm::ES256, Some("ec-1"), &keys.ec, &claims("https://es.test", "eve"));
    let r = s.call("POST", "/v1/keys", &es_plain, Some(json!({"namespace": "admins"}))).await;
    assert_eq!(r.code(), "AccessDenied");

    let before = s.audit_count().await;
    let rsa_public_pem = fixture("rsa.pub.pem");
    let good = claims("https://rs.test", "mallory");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let truncated = {
        let mut t = rs.clone();
        t.truncate(t.len() - 12);
        t
    };
    let stripped = format!("{}.", rs.rsplit_once('.').unwrap().0);
    let header = |alg: &str| json!({"alg": alg, "typ": "JWT"});
    let attacks: Vec<(&str, String)> = vec![
        ("alg none", raw(&header("none"), &good, b"")),
        ("alg None", raw(&header("None"), &good, b"")),
        ("alg NONE", raw(&header("NONE"), &good, b"")),
        ("alg nOnE", raw(&header("nOnE"), &good, b"")),
        (
            "HS256 signed with the RSA public key",
            sign(Algorithm::HS256, None, &EncodingKey::from_secret(&rsa_public_pem), &good),
        ),
        ("algorithm not pinned (ES256 for the RS256 issuer)", sign(Algorithm::ES256, None, &keys.ec, &good)),
        ("wrong key", sign(Algorithm::ES256, Some("ec-1"), &keys.other_ec, &claims("https://es.test", "mallory"))),
        ("stripped signature", stripped),
        ("truncated signature", truncated),
        ("expired", sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["exp"] = json!(now() - 120)))),
        (
            "exp as a string",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["exp"] = json!((now() + 600).to_string()))),
        ),
        (
            "nbf as a string",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["nbf"] = json!((now() - 5).to_string()))),
        ),
        ("nbf in the future", sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["nbf"] = json!(now() + 600)))),
        (
            "missing exp",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| drop(c.as_object_mut().unwrap().remove("exp")))),
        ),
        (
            "missing nbf",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| drop(c.as_object_mut().unwrap().remove("nbf")))),
        ),
        (
            "missing iss",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| drop(c.as_object_mut().unwrap().remove("iss")))),
        ),
        (
            "missing aud",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| drop(c.as_object_mut().unwrap().remove("aud")))),
        ),
        (
            "untrusted issuer",
            sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["iss"] = json!("https://evil.test"))),
        ),
        ("wrong audience", sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["aud"] = json!("other")))),
        ("unknown kid", sign(Algorithm::ES256, Some("nope"), &keys.ec, &claims("https://es.test", "mallory"))),
        ("token over 8 KiB", sign(Algorithm::RS256, None, &keys.rsa, &with(&|c| c["pad"] = json!("x".repeat(9000))))),
    ];
    // Headers that name a key: refused, and the URLs are never fetched.
    let evil = jwks_server.url("/jwks.json").replace("jwks.json", "evil");
    let mut naming = Vec::new();
    for (field, value) in [
        ("jku", json!(evil)),
        ("x5u", json!(evil)),
        ("jwk", serde_json::to_value(Jwk::from_encoding_key(&keys.ec, Algorithm::ES256).unwrap()).unwrap()),
    ] {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("ec-1".into());
        let mut hv = serde_json::to_value(&h).unwrap();
        hv[field] = value;
        let token = encode(&Header::new(Algorithm::ES256), &claims("https://es.test", "mallory"), &keys.ec).unwrap();
        // Re-sign with the crafted header by signing its exact bytes.
        let (_, rest) = token.split_once('.').unwrap();
        let payload = rest.split_once('.').unwrap().0;
        let signing_input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(hv.to_string()));
        let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &keys.ec, Algorithm::ES256).unwrap();
        naming.push((field, format!("{signing_input}.{sig}")));
    }
    let mut reference: Option<Value> = None;
    let mut refused = 0u64;
    for (name, token) in attacks.iter().map(|(n, t)| (*n, t.clone())).chain(naming.into_iter()) {
        let r = s.call("POST", "/v1/keys", &token, Some(json!({"namespace": "admins"}))).await;
        refused += 1;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        let body = without_request_id(r.body);
        match &reference {
            None => reference = Some(body),
            Some(first) => assert_eq!(&body, first, "{name}: every refusal has the same body"),
        }
    }
    assert!(!jwks_server.hits.lock().unwrap().iter().any(|p| p.contains("evil")), "a URL named by a token was fetched");
    // Every refusal is audited, anonymous, with no decision: nothing reached Cedar.
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    let refusals: Vec<_> = records.iter().skip(before as usize).collect();
    assert_eq!(refusals.len() as u64, refused);
    assert!(
        refusals.iter().all(|r| r.outcome == "Unauthenticated" && r.decision.is_none() && r.principal == "anonymous")
    );
    let dump = format!("{refusals:?}");
    assert!(!dump.contains(&rs[..40]), "no token in the audit trail");

    // A key removed from the JWKS stops working within the refresh period, cached or not.
    let fetches = jwks_server.count.load(Ordering::SeqCst);
    *jwks_server.body.lock().unwrap() = jwks(&[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = s.call("GET", "/v1/keys", &ed, None).await;
    assert_eq!(r.status, 401, "removed key still accepted: {}", r.body);
    assert!(jwks_server.count.load(Ordering::SeqCst) > fetches);
    // A new key appears without a restart.
    *jwks_server.body.lock().unwrap() = jwks(&[("ed-2", &keys.ed, Algorithm::EdDSA)]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ed2 = sign(Algorithm::EdDSA, Some("ed-2"), &keys.ed, &claims("https://ed.test", "edna"));
    assert_eq!(s.call("GET", "/v1/keys", &ed2, None).await.status, 200);
}

#[tokio::test]
async fn misconfigured_issuers_refuse_to_start() {
    let cases = [
        (r#"algorithms = ["none"]"#, "not supported"),
        (r#"algorithms = ["RS256"]"#, "exactly one of"),
        (
            r#"algorithms = ["HS256"]
public_key_file = "tests/fixtures/jwt/rsa.pub.pem""#,
            "does not fit",
        ),
        (
            r#"algorithms = ["ES256"]
jwks_url = "http://idp.example.com/jwks.json""#,
            "must use https",
        ),
    ];
    for (body, expected) in cases {
        let stderr =
            keyward_e2e::refuses_to_start(&format!("[[auth.issuers]]\nissuer = \"i\"\naudience = \"a\"\n{body}\n"));
        assert!(stderr.contains(expected), "{body}: {stderr}");
    }
}
