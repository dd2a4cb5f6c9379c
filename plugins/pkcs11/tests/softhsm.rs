//! The pkcs11 backend against a SoftHSM2 token (`scripts/start-softhsm.sh` provisions one):
//! the whole conformance suite, and the token-held root key. Without a token these tests fail
//! under `KEYWARD_REQUIRE_SERVICES=1` (the full suite) and are skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use keyward_backend::{Backend, BackendError, RootWrapper, VersionHandle};
use keyward_backend_pkcs11::{Pkcs11Backend, Pkcs11Config};
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::{KeySpec, KeyUsage};

fn config() -> Option<Pkcs11Config> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    match (var("KEYWARD_TEST_PKCS11_MODULE"), var("KEYWARD_TEST_PKCS11_TOKEN"), var("KEYWARD_TEST_PKCS11_PIN_FILE")) {
        (Some(module), Some(label), Some(pin)) => Some(Pkcs11Config {
            module: module.into(),
            token_label: label,
            pin_file: Some(pin.into()),
            pin_env: None,
            sessions: None,
            calls: None,
            root_key_label: Some(format!("test-root-{}", uuid::Uuid::new_v4())),
        }),
        _ if std::env::var("KEYWARD_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("no SoftHSM2 token: run scripts/start-softhsm.sh (the full suite requires it)")
        }
        _ => {
            eprintln!("skipped: no SoftHSM2 token (KEYWARD_TEST_PKCS11_*)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_whole_conformance_suite() {
    let Some(config) = config() else { return };
    let backend = Pkcs11Backend::connect(&config).unwrap();
    let report = keyward_backend::conformance::run_all(&backend).await.unwrap();
    eprintln!("pkcs11 conformance: {report}");
    // SoftHSM2 has every mechanism: every signing and MAC spec runs in the token.
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_only_a_reference_and_refuses_a_foreign_one() {
    let Some(config) = config() else { return };
    let backend = Pkcs11Backend::connect(&config).unwrap();
    let id = KeyId(uuid::Uuid::new_v4());
    let reference = Backend::create_key(&backend, id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.unwrap();
    // The stored reference is the object's CKA_ID, not key bytes.
    assert_eq!(&reference[1..], keyward_backend_pkcs11::object_id(id, 1).as_slice());
    let other = VersionHandle { key_id: KeyId(uuid::Uuid::new_v4()), version: 1, material: &reference };
    let aad = |_: u8, _: &[u8]| Vec::new();
    assert!(matches!(
        Backend::encrypt(&backend, other, b"x", &Default::default(), &aad).await,
        Err(BackendError::InvalidMaterial(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_key_seals_in_the_token() {
    let Some(config) = config() else { return };
    let backend = Pkcs11Backend::connect(&config).unwrap();
    let root = backend.root(config.root_key_label.as_deref().unwrap()).unwrap();
    let sealed = root.seal(b"aad", b"thirty-two bytes of key material").unwrap();
    assert_eq!(root.open(b"aad", &sealed).unwrap().as_slice(), b"thirty-two bytes of key material");
    assert!(root.open(b"other", &sealed).is_err(), "bound to its associated data");
    // Opening it again finds the same key (same id), not a new one.
    let again = backend.root(config.root_key_label.as_deref().unwrap()).unwrap();
    assert_eq!(again.id(), root.id());
    assert_eq!(again.open(b"aad", &sealed).unwrap().as_slice(), b"thirty-two bytes of key material");
}
