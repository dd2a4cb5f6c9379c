//! Property tests through the real service: round trips for arbitrary plaintexts and
//! contexts, every single-bit flip rejected, and a total blob parser.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use keyward_core::ErrorCode;
use keyward_core::blob::Blob;
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyRef;
use keyward_core::operation::Operation;
use keyward_core::ports::clock::SystemClock;
use keyward_core::service::{DecryptInput, EncryptInput};
use keyward_e2e::Db;
use keyward_e2e::inproc::Rig;
use proptest::prelude::*;
use zeroize::Zeroizing;

struct Fixture {
    rt: tokio::runtime::Runtime,
    rig: Rig,
    key: KeyRef,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (rig, key) = rt.block_on(async {
            let rig = Rig::new(Db::Sqlite, Arc::new(SystemClock)).await;
            let svc = rig.service.clone();
            let input = Rig::key_input("prop");
            let m =
                svc.audited(rig.admin(Operation::CreateKey), async |s| svc.create_key(s, input).await).await.unwrap();
            (rig, KeyRef::Id(m.key.id))
        });
        Fixture { rt, rig, key }
    })
}

fn encrypt(f: &Fixture, plaintext: &[u8], ctx: &BTreeMap<String, String>) -> Vec<u8> {
    let svc = f.rig.service.clone();
    let input = EncryptInput {
        key: f.key.clone(),
        plaintext: Zeroizing::new(plaintext.to_vec()),
        context: EncryptionContext::new(ctx.clone()).unwrap(),
    };
    f.rt.block_on(svc.audited(f.rig.admin(Operation::Encrypt), async |s| svc.encrypt(s, input).await))
        .unwrap()
        .ciphertext_blob
}

fn decrypt(f: &Fixture, blob: Vec<u8>, ctx: &BTreeMap<String, String>) -> Result<Vec<u8>, ErrorCode> {
    let svc = f.rig.service.clone();
    let input =
        DecryptInput { ciphertext_blob: blob, context: EncryptionContext::new(ctx.clone()).unwrap(), key: None };
    f.rt.block_on(svc.audited(f.rig.admin(Operation::Decrypt), async |s| svc.decrypt(s, input).await))
        .map(|o| o.plaintext.to_vec())
        .map_err(|e| e.code())
}

fn context() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z]{1,8}", ".{0,16}", 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trips(plaintext in prop::collection::vec(any::<u8>(), 1..=4096), ctx in context()) {
        let f = fixture();
        let blob = encrypt(f, &plaintext, &ctx);
        prop_assert_eq!(decrypt(f, blob, &ctx), Ok(plaintext));
    }

    #[test]
    fn any_bit_flip_is_rejected(plaintext in prop::collection::vec(any::<u8>(), 1..64), ctx in context(), bit in any::<prop::sample::Index>()) {
        let f = fixture();
        let mut blob = encrypt(f, &plaintext, &ctx);
        let i = bit.index(blob.len() * 8);
        blob[i / 8] ^= 1 << (i % 8);
        prop_assert_eq!(decrypt(f, blob, &ctx), Err(ErrorCode::InvalidCiphertext));
    }

    #[test]
    fn a_changed_context_is_rejected(plaintext in prop::collection::vec(any::<u8>(), 1..64), ctx in context(), extra in "[a-z]{1,8}") {
        let f = fixture();
        let blob = encrypt(f, &plaintext, &ctx);
        let mut other = ctx.clone();
        other.insert(extra, "x".into());
        prop_assume!(other != ctx);
        prop_assert_eq!(decrypt(f, blob, &other), Err(ErrorCode::InvalidCiphertext));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn blob_parsing_is_total(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Any result is fine; a panic fails the test.
        let _ = Blob::parse(&bytes);
        let mut framed = b"KW\x01".to_vec();
        framed.extend_from_slice(&bytes);
        if let Ok(b) = Blob::parse(&framed) {
            prop_assert_eq!(b.encode(), framed);
        }
    }
}
