//! Bearer token handling: any token is either a principal or refused with `Unauthenticated`
//! (never a panic, never another error); a token minted for the issuer with any subject and
//! groups claim verifies as exactly that principal, and a changed signature does not.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::{EncodingKey, Header};
use keyward_api::auth::{Authenticator, Issuer};
use keyward_core::ErrorCode;
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-32";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}")))
}

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let issuer = Issuer::hs256("https://fuzz.example", "keyward", "groups", &Zeroizing::new(SECRET.to_vec()), 0)
            .unwrap_or_else(|e| panic!("{e}"));
        Authenticator::new(vec![issuer])
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Any text as a token.
    if let Err(e) = runtime().block_on(authenticator().verify(&text)) {
        assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e:?}");
    }
    // Any subject and groups, minted properly: verifies as that principal, or is refused as
    // a whole (a malformed subject), and a forged signature never verifies.
    let (sub, groups) = text.split_once('\n').unwrap_or((&text, ""));
    let groups: Vec<&str> = groups.split(',').collect();
    let now = 1_767_225_600i64.max(chrono::Utc::now().timestamp());
    let claims = serde_json::json!({
        "iss": "https://fuzz.example", "aud": "keyward", "sub": sub, "groups": groups,
        "iat": now, "nbf": now - 10, "exp": now + 600,
    });
    let Ok(token) = jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET)) else { return };
    match runtime().block_on(authenticator().verify(&token)) {
        Ok(p) => {
            assert_eq!(p.id, sub, "the subject is the principal");
            let expected: Vec<&str> = groups.clone();
            assert_eq!(p.groups, expected, "the groups claim is the principal's groups");
        }
        // Only a subject outside 1-256 bytes, or a token over 8 KiB, is refused.
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e:?}");
            assert!(sub.is_empty() || sub.len() > 256 || token.len() > 8192, "a well-formed minted token refused: {e:?}");
        }
    }
    let mut forged = token.clone();
    let last = forged.pop().unwrap_or('A');
    forged.push(if last == 'A' { 'B' } else { 'A' });
    if forged != token {
        assert!(runtime().block_on(authenticator().verify(&forged)).is_err(), "a forged signature verified");
    }
});
