//! The conformance suite: behaviour every backend kind must show, each check gated by the
//! capability it needs. A backend crate runs it from its tests with a live instance:
//! `keyward_backend::conformance::run_all(&backend).await`, which returns the checks that ran
//! and those skipped for a missing capability, so a report lists both.

use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::{KeySpec, KeyUsage};
use keyward_core::model::signing::Message;
use keyward_core::ports::backend::{BackendError, DynBackend, GcmVector, RsaTestKey, VersionHandle};
use uuid::Uuid;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Checks that ran and passed.
    pub passed: Vec<&'static str>,
    /// Checks not run, with the capability they need.
    pub skipped: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "passed: {}", self.passed.join(", "))?;
        for (check, needs) in &self.skipped {
            write!(f, "; skipped {check} (needs {needs})")?;
        }
        Ok(())
    }
}

/// Runs every check the backend's capabilities allow, all of them even after a failure.
/// Returns the report, or every failing check with its reason.
pub async fn run_all(backend: &dyn DynBackend) -> Result<Report, String> {
    let mut report = Report::default();
    let mut failures = Vec::new();
    let caps = backend.capabilities().clone();
    macro_rules! check {
        ($name:expr, $gate:expr, $needs:expr, $run:expr) => {
            if $gate {
                match $run.await {
                    Ok(()) => report.passed.push($name),
                    Err(e) => failures.push(format!("{}: {e}", $name)),
                }
            } else {
                report.skipped.push(($name, $needs));
            }
        };
    }
    let aes = caps.specs.contains(&KeySpec::Aes256);
    check!("round_trip", aes, "AES_256", round_trip(backend));
    check!("context_binding", aes, "AES_256", context_binding(backend));
    check!("rejects_tampering", aes, "AES_256", rejects_tampering(backend));
    check!("version_handling", aes, "AES_256", version_handling(backend));
    check!("ciphertexts_differ", aes, "AES_256", ciphertexts_differ(backend));
    check!("max_plaintext", aes, "AES_256", max_plaintext(backend));
    check!("data_keys", aes, "AES_256", data_keys(backend));
    check!("destroy", aes, "AES_256", destroy(backend));
    check!(
        "destroyed_version_refused",
        aes && caps.destroy_is_immediate && !caps.material_leaves,
        "material held in the backend and destroyed at once",
        destroyed_version_refused(backend)
    );
    check!("concurrency", aes, "AES_256", concurrency(backend));
    check!("raw_gcm", aes && caps.raw_gcm, "raw AES-GCM", raw_gcm(backend));
    check!("wycheproof_aes_gcm", caps.fixed_nonce_testing, "fixed-nonce testing", wycheproof_aes_gcm(backend));
    for spec in KeySpec::ALL.into_iter().filter(|s| s.is_asymmetric()) {
        let name = signature_check_name(spec);
        check!(name, caps.specs.contains(&spec), spec.as_str(), signatures(backend, spec));
    }
    for spec in [KeySpec::Hmac256, KeySpec::Hmac384, KeySpec::Hmac512] {
        let name = mac_check_name(spec);
        check!(name, caps.specs.contains(&spec), spec.as_str(), macs(backend, spec));
    }
    let oaep = caps.specs.contains(&KeySpec::Rsa2048) && !caps.rsa_oaep.is_empty();
    check!("rsa_oaep", oaep, "RSA_2048 with RSA-OAEP", rsa_oaep(backend));
    check!(
        "wycheproof_rsa_oaep",
        oaep && caps.fixed_nonce_testing,
        "RSA-OAEP and known-answer testing",
        wycheproof_rsa_oaep(backend)
    );
    let signs = caps.specs.iter().any(|s| s.is_asymmetric());
    check!(
        "wycheproof_signatures",
        signs && caps.fixed_nonce_testing,
        "signing keys and known-answer testing",
        wycheproof_signatures(backend)
    );
    let macs_any = caps.specs.contains(&KeySpec::Hmac256);
    check!(
        "wycheproof_hmac",
        macs_any && caps.fixed_nonce_testing,
        "HMAC keys and known-answer testing",
        wycheproof_hmac(backend)
    );
    check!("random_bytes", true, "", random_bytes(backend));
    check!("random_quality", true, "", random_quality(backend));
    check!("health", true, "", health(backend));
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(format!("{} check(s) failed: {} ({report})", failures.len(), failures.join("; ")))
    }
}

/// A fresh key id per check and run: backends that keep objects (HSM tokens) see no collisions.
fn new_key_id() -> KeyId {
    KeyId(Uuid::new_v4())
}

/// The encryption context a check binds (external backends forward it; the rest rely on the
/// associated data, which covers it).
fn context_for(tag: &[u8]) -> EncryptionContext {
    let map = if tag.is_empty() {
        std::collections::BTreeMap::new()
    } else {
        std::collections::BTreeMap::from([("check".to_owned(), String::from_utf8_lossy(tag).into_owned())])
    };
    // One short pair always fits the context limits.
    EncryptionContext::new(map).unwrap_or_else(|e| unreachable!("{e}"))
}

fn aad_for(tag: &[u8]) -> impl Fn(u8, &[u8]) -> Vec<u8> + Send + Sync + use<> {
    let tag = tag.to_vec();
    move |alg, params| {
        let mut v = tag.clone();
        v.push(alg);
        v.extend_from_slice(params);
        v
    }
}

/// Encrypt then decrypt returns the plaintext, for several sizes.
pub async fn round_trip(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let material =
        backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    for len in [1usize, 15, 16, 17, 1024, backend.capabilities().max_plaintext] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let aad = aad_for(b"round-trip");
        let ctx = context_for(b"round-trip");
        let sealed = backend.encrypt(handle, &plaintext, &ctx, &aad).await.map_err(|e| e.to_string())?;
        let full_aad = aad(sealed.algorithm, &sealed.params);
        let back = backend
            .decrypt(handle, sealed.algorithm, &sealed.params, &sealed.ciphertext, &ctx, &full_aad)
            .await
            .map_err(|e| format!("decrypt of {len} bytes failed: {e}"))?;
        if back.as_slice() != plaintext.as_slice() {
            return Err(format!("round trip of {len} bytes returned other bytes"));
        }
    }
    Ok(())
}

/// Raw AES-GCM: a round trip with a fresh 96-bit nonce and a 16-byte tag apart, ciphertext as
/// long as the plaintext, nonces never repeated, and any changed nonce, ciphertext, tag or
/// associated data refused.
pub async fn raw_gcm(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let material =
        backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    let plaintext: Vec<u8> = (0..4300).map(|i| (i % 251) as u8).collect();
    let aad = b"raw associated data";
    let sealed = backend.seal_raw(handle, &plaintext, aad).await.map_err(|e| e.to_string())?;
    if sealed.ciphertext.len() != plaintext.len() {
        return Err("the raw ciphertext is not as long as the plaintext".into());
    }
    let back = backend.open_raw(handle, &sealed, aad).await.map_err(|e| format!("open: {e}"))?;
    if back.as_slice() != plaintext.as_slice() {
        return Err("the raw round trip returned other bytes".into());
    }
    let again = backend.seal_raw(handle, &plaintext, aad).await.map_err(|e| e.to_string())?;
    if again.nonce == sealed.nonce {
        return Err("a nonce repeated".into());
    }
    let mut changed = Vec::new();
    for i in [0usize, 11] {
        let mut s = sealed.clone();
        s.nonce[i] ^= 1;
        changed.push((s, aad.to_vec()));
    }
    for i in [0usize, 4299] {
        let mut s = sealed.clone();
        s.ciphertext[i] ^= 1;
        changed.push((s, aad.to_vec()));
    }
    let mut s = sealed.clone();
    s.tag[15] ^= 1;
    changed.push((s, aad.to_vec()));
    changed.push((sealed.clone(), b"other associated data".to_vec()));
    for (i, (s, aad)) in changed.iter().enumerate() {
        if backend.open_raw(handle, s, aad).await.is_ok() {
            return Err(format!("altered raw case {i} opened"));
        }
    }
    Ok(())
}

/// A flipped bit in the ciphertext, the params or the associated data fails authentication.
pub async fn rejects_tampering(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let material =
        backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    let aad = aad_for(b"tamper");
    let ctx = context_for(b"tamper");
    let sealed = backend.encrypt(handle, b"attack at dawn", &ctx, &aad).await.map_err(|e| e.to_string())?;
    let good_aad = aad(sealed.algorithm, &sealed.params);
    for i in 0..sealed.ciphertext.len() * 8 {
        let mut ct = sealed.ciphertext.clone();
        ct[i / 8] ^= 1 << (i % 8);
        expect_decrypt_failed(
            backend.decrypt(handle, sealed.algorithm, &sealed.params, &ct, &ctx, &good_aad).await,
            "ciphertext bit",
        )?;
    }
    for i in 0..sealed.params.len() * 8 {
        let mut params = sealed.params.clone();
        params[i / 8] ^= 1 << (i % 8);
        let aad2 = aad(sealed.algorithm, &params);
        expect_decrypt_failed(
            backend.decrypt(handle, sealed.algorithm, &params, &sealed.ciphertext, &ctx, &aad2).await,
            "params bit",
        )?;
    }
    let mut bad_aad = good_aad.clone();
    bad_aad[0] ^= 1;
    expect_decrypt_failed(
        backend.decrypt(handle, sealed.algorithm, &sealed.params, &sealed.ciphertext, &ctx, &bad_aad).await,
        "associated data",
    )?;
    expect_decrypt_failed(
        backend
            .decrypt(
                handle,
                sealed.algorithm,
                &sealed.params,
                &sealed.ciphertext[..sealed.ciphertext.len() - 1],
                &ctx,
                &good_aad,
            )
            .await,
        "truncated ciphertext",
    )
}

/// Each version decrypts its own blobs, and a blob never decrypts under another version.
pub async fn version_handling(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m1 = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let m2 = backend.create_key(id, 2, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let aad = aad_for(b"other");
    let ctx = context_for(b"other");
    let h1 = VersionHandle { key_id: id, version: 1, material: &m1 };
    let h2 = VersionHandle { key_id: id, version: 2, material: &m2 };
    for (own, other) in [(h1, h2), (h2, h1)] {
        let sealed = backend.encrypt(own, b"secret", &ctx, &aad).await.map_err(|e| e.to_string())?;
        let full = aad(sealed.algorithm, &sealed.params);
        let back = backend
            .decrypt(own, sealed.algorithm, &sealed.params, &sealed.ciphertext, &ctx, &full)
            .await
            .map_err(|e| format!("version {} does not decrypt its own blob: {e}", own.version))?;
        if back.as_slice() != b"secret" {
            return Err("a version decrypted its own blob to other bytes".into());
        }
        match backend.decrypt(other, sealed.algorithm, &sealed.params, &sealed.ciphertext, &ctx, &full).await {
            Err(BackendError::DecryptFailed(_) | BackendError::InvalidMaterial(_)) => {}
            Ok(_) => return Err("a blob decrypted under another key version".into()),
            Err(e) => return Err(format!("decrypting under another version failed with the wrong error: {e}")),
        }
    }
    Ok(())
}

/// The associated data (the caller's encryption context) is bound: another context fails.
pub async fn context_binding(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let tenant_a = aad_for(b"tenant=a");
    let ctx = context_for(b"tenant=a");
    let sealed = backend.encrypt(h, b"bound", &ctx, &tenant_a).await.map_err(|e| e.to_string())?;
    for tag in [&b"tenant=b"[..], b"", b"tenant=a "] {
        let aad = aad_for(tag)(sealed.algorithm, &sealed.params);
        expect_decrypt_failed(
            backend.decrypt(h, sealed.algorithm, &sealed.params, &sealed.ciphertext, &context_for(tag), &aad).await,
            "encryption context",
        )?;
    }
    Ok(())
}

/// Destroying a version succeeds, and destroying it again too (destruction is retried after a
/// crash).
pub async fn destroy(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    backend.destroy(h).await.map_err(|e| format!("destroy failed: {e}"))?;
    backend.destroy(h).await.map_err(|e| format!("a second destroy failed: {e}"))
}

/// Where the backend holds the material and destroys it at once, a destroyed version no longer
/// decrypts.
pub async fn destroyed_version_refused(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"destroy");
    let ctx = context_for(b"destroy");
    let sealed = backend.encrypt(h, b"gone", &ctx, &aad).await.map_err(|e| e.to_string())?;
    backend.destroy(h).await.map_err(|e| format!("destroy failed: {e}"))?;
    let full = aad(sealed.algorithm, &sealed.params);
    if backend.decrypt(h, sealed.algorithm, &sealed.params, &sealed.ciphertext, &ctx, &full).await.is_ok() {
        return Err("a destroyed version still decrypts".into());
    }
    Ok(())
}

/// Data keys: the requested length, sealed so that decryption gives them back, the plaintext
/// only when asked for, and a new key each time.
pub async fn data_keys(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"data-key");
    let ctx = context_for(b"data-key");
    let mut seen = Vec::new();
    for len in [16usize, 32, 64] {
        let made = backend.generate_data_key(h, len, &ctx, &aad, true).await.map_err(|e| e.to_string())?;
        let plaintext = made.plaintext.ok_or("no plaintext although asked for")?;
        if plaintext.len() != len {
            return Err(format!("asked for a {len}-byte data key, got {}", plaintext.len()));
        }
        let s = &made.sealed;
        let full = aad(s.algorithm, &s.params);
        let back = backend
            .decrypt(h, s.algorithm, &s.params, &s.ciphertext, &ctx, &full)
            .await
            .map_err(|e| format!("the sealed data key does not decrypt: {e}"))?;
        if back.as_slice() != plaintext.as_slice() {
            return Err("the sealed data key decrypts to other bytes".into());
        }
        if seen.contains(&*plaintext) {
            return Err("a data key repeated".into());
        }
        seen.push(plaintext.to_vec());
    }
    let without = backend.generate_data_key(h, 32, &ctx, &aad, false).await.map_err(|e| e.to_string())?;
    if without.plaintext.is_some() {
        return Err("a data key without plaintext came with its plaintext".into());
    }
    let s = &without.sealed;
    let full = aad(s.algorithm, &s.params);
    let back =
        backend.decrypt(h, s.algorithm, &s.params, &s.ciphertext, &ctx, &full).await.map_err(|e| e.to_string())?;
    if back.len() != 32 {
        Err(format!("a data key without plaintext decrypts to {} bytes", back.len()))
    } else {
        Ok(())
    }
}

/// Many tasks at once on one key: every round trip is correct.
pub async fn concurrency(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"concurrent");
    let ctx = context_for(b"concurrent");
    let task = |n: u32| {
        let (aad, ctx) = (&aad, &ctx);
        async move {
            for i in 0..8u32 {
                let plaintext = [n.to_be_bytes(), i.to_be_bytes()].concat();
                let sealed = backend.encrypt(h, &plaintext, ctx, aad).await.map_err(|e| e.to_string())?;
                let full = aad(sealed.algorithm, &sealed.params);
                let back = backend
                    .decrypt(h, sealed.algorithm, &sealed.params, &sealed.ciphertext, ctx, &full)
                    .await
                    .map_err(|e| e.to_string())?;
                if back.as_slice() != plaintext.as_slice() {
                    return Err(format!("task {n} got another task's plaintext"));
                }
            }
            Ok::<(), String>(())
        }
    };
    let results = futures_util::future::join_all((0..64).map(task)).await;
    results.into_iter().collect()
}

/// The Wycheproof AES-GCM vectors (AES-256, 96-bit nonce, 128-bit tag) through the backend's
/// own cipher: valid vectors seal and open to the expected bytes, invalid ones never open.
pub async fn wycheproof_aes_gcm(backend: &dyn DynBackend) -> Result<(), String> {
    use wycheproof::TestResult;
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).map_err(|e| e.to_string())?;
    let mut ran = 0;
    for group in set.test_groups.iter().filter(|g| g.key_size == 256 && g.nonce_size == 96 && g.tag_size == 128) {
        for t in &group.tests {
            let sealed = [t.ct.as_ref(), t.tag.as_ref()].concat();
            let open = GcmVector { key: &t.key, nonce: &t.nonce, aad: &t.aad, input: &sealed, decrypt: true };
            let opened = backend.test_vector(open);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let seal = GcmVector { key: &t.key, nonce: &t.nonce, aad: &t.aad, input: &t.pt, decrypt: false };
                    let ct = backend.test_vector(seal).map_err(|e| format!("vector {}: seal: {e}", t.tc_id))?;
                    if ct != sealed {
                        return Err(format!("vector {}: sealed to other bytes", t.tc_id));
                    }
                    if opened.as_deref().ok() != Some(t.pt.as_ref()) {
                        return Err(format!("vector {}: valid ciphertext did not open", t.tc_id));
                    }
                }
                TestResult::Invalid => {
                    if opened.is_ok() {
                        return Err(format!("vector {} ({}): invalid ciphertext opened", t.tc_id, t.comment));
                    }
                }
            }
            ran += 1;
        }
    }
    if ran < 50 { Err(format!("only {ran} vectors ran")) } else { Ok(()) }
}

/// The name of a spec's signature check (`signatures_ECC_NIST_P256`, ...).
pub fn signature_check_name(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::Rsa2048 => "signatures_RSA_2048",
        KeySpec::Rsa3072 => "signatures_RSA_3072",
        KeySpec::Rsa4096 => "signatures_RSA_4096",
        KeySpec::EccNistP256 => "signatures_ECC_NIST_P256",
        KeySpec::EccNistP384 => "signatures_ECC_NIST_P384",
        KeySpec::EccNistP521 => "signatures_ECC_NIST_P521",
        KeySpec::EccNistEdwards25519 => "signatures_ECC_NIST_EDWARDS25519",
        _ => "signatures",
    }
}

/// The name of a spec's MAC check.
pub fn mac_check_name(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::Hmac256 => "macs_HMAC_256",
        KeySpec::Hmac384 => "macs_HMAC_384",
        _ => "macs_HMAC_512",
    }
}

/// A bit-flipped copy of `bytes`.
fn flipped(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[bit / 8] ^= 1 << (bit % 8);
    v
}

/// Signing keys of a spec: for every algorithm and message type, the signature verifies
/// through the backend and with the public key alone (aws-lc-rs), RAW and DIGEST forms agree,
/// and a wrong message, a wrong key or any flipped bit of the signature is refused.
pub async fn signatures(backend: &dyn DynBackend, spec: KeySpec) -> Result<(), String> {
    use crate::signature::{message_digest, verify};
    let e = |what: &'static str| move |err: BackendError| format!("{spec}: {what}: {err}");
    let (a, b) = (new_key_id(), new_key_id());
    let ma = backend.create_key(a, 1, spec, spec.usage()).await.map_err(e("create"))?;
    let mb = backend.create_key(b, 1, spec, spec.usage()).await.map_err(e("create"))?;
    let ka = VersionHandle { key_id: a, version: 1, material: &ma };
    let kb = VersionHandle { key_id: b, version: 1, material: &mb };
    let public = backend.public_key(ka, spec).await.map_err(e("public key"))?;
    if backend.public_key(kb, spec).await.map_err(e("public key"))? == public {
        return Err(format!("{spec}: two keys have one public key"));
    }
    let message = b"Keyward conformance: the quick brown fox".as_slice();
    let digests = backend.capabilities().signs_digests;
    for (i, &alg) in keyward_core::model::signing::SigningAlgorithm::for_spec(spec).iter().enumerate() {
        let digest = message_digest(alg, Message::Raw(message)).map_err(e("digest"))?;
        // EdDSA has no digest form, and a backend may not take digests at all.
        let eddsa = alg == keyward_core::model::signing::SigningAlgorithm::Ed25519Sha512;
        let mut forms = vec![Message::Raw(message)];
        if digests && !eddsa {
            forms.push(Message::Digest(digest.as_ref()));
        }
        for form in forms {
            let sig = backend.sign(ka, spec, alg, form).await.map_err(e("sign"))?;
            for other in [Message::Raw(message), Message::Digest(digest.as_ref())] {
                if eddsa && matches!(other, Message::Digest(_)) {
                    continue;
                }
                if !digests && matches!(other, Message::Digest(_)) {
                    // The public key alone still shows the RAW signature covers the digest.
                    if !verify(spec, alg, &public, other, &sig).map_err(e("verify with the public key"))? {
                        return Err(format!("{spec} {alg}: the public key does not verify over the digest"));
                    }
                    continue;
                }
                // A signature over the message verifies as a signature over its digest.
                if !backend.verify(ka, spec, alg, other, &sig).await.map_err(e("verify"))? {
                    return Err(format!(
                        "{spec} {alg}: a {:?} signature does not verify as {:?}",
                        form.kind(),
                        other.kind()
                    ));
                }
                if !verify(spec, alg, &public, other, &sig).map_err(e("verify with the public key"))? {
                    return Err(format!("{spec} {alg}: the public key does not verify the signature"));
                }
            }
            if backend.verify(ka, spec, alg, Message::Raw(b"another message"), &sig).await.map_err(e("verify"))? {
                return Err(format!("{spec} {alg}: the signature verifies another message"));
            }
            if backend.verify(kb, spec, alg, Message::Raw(message), &sig).await.map_err(e("verify"))? {
                return Err(format!("{spec} {alg}: another key verifies the signature"));
            }
            // Every bit of one signature per curve (every byte, at a moving bit, for RSA); a
            // spread of bits for the other algorithms and forms.
            let every = i == 0 && form.kind() == keyward_core::model::signing::MessageType::Raw;
            let bits: Vec<usize> = match (every, spec.is_rsa()) {
                (true, false) => (0..sig.len() * 8).collect(),
                (true, true) => (0..sig.len()).map(|byte| byte * 8 + byte % 8).collect(),
                (false, _) => (0..sig.len() * 8).step_by(61).collect(),
            };
            for bit in bits {
                let bad = flipped(&sig, bit);
                if backend.verify(ka, spec, alg, Message::Raw(message), &bad).await.unwrap_or(false) {
                    return Err(format!("{spec} {alg}: the signature with bit {bit} flipped verifies"));
                }
            }
        }
    }
    for h in [ka, kb] {
        backend.destroy(h).await.map_err(e("destroy"))?;
    }
    Ok(())
}

/// RSA ENCRYPT_DECRYPT keys (RSA-2048): for both OAEP algorithms the largest plaintext round
/// trips, two encryptions differ, a ciphertext made outside with the public key alone
/// (aws-lc-rs) decrypts, and a flipped bit, the other algorithm or another key never decrypt.
pub async fn rsa_oaep(backend: &dyn DynBackend) -> Result<(), String> {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
    use keyward_core::model::signing::EncryptionAlgorithm as E;
    let spec = KeySpec::Rsa2048;
    let e = |what: &'static str| move |err: BackendError| format!("RSA-OAEP: {what}: {err}");
    let (a, b) = (new_key_id(), new_key_id());
    let ma = backend.create_key(a, 1, spec, KeyUsage::EncryptDecrypt).await.map_err(e("create"))?;
    let mb = backend.create_key(b, 1, spec, KeyUsage::EncryptDecrypt).await.map_err(e("create"))?;
    let ka = VersionHandle { key_id: a, version: 1, material: &ma };
    let kb = VersionHandle { key_id: b, version: 1, material: &mb };
    let public = backend.public_key(ka, spec).await.map_err(e("public key"))?;
    let outside = OaepPublicEncryptingKey::new(
        PublicEncryptingKey::from_der(&public).map_err(|_| "RSA-OAEP: the public key does not parse".to_owned())?,
    )
    .map_err(|_| "RSA-OAEP: the public key does not encrypt".to_owned())?;
    let algorithms = [
        (E::RsaesOaepSha256, &OAEP_SHA256_MGF1SHA256, E::RsaesOaepSha1),
        (E::RsaesOaepSha1, &OAEP_SHA1_MGF1SHA1, E::RsaesOaepSha256),
    ];
    let offered = backend.capabilities().rsa_oaep.clone();
    for (alg, outside_alg, other) in algorithms.into_iter().filter(|(a, ..)| offered.contains(a)) {
        let plaintext: Vec<u8> = (0..alg.max_plaintext(spec)).map(|i| (i % 251) as u8).collect();
        let c1 = backend.encrypt_asymmetric(ka, spec, alg, &plaintext).await.map_err(e("encrypt"))?;
        let c2 = backend.encrypt_asymmetric(ka, spec, alg, &plaintext).await.map_err(e("encrypt"))?;
        if c1 == c2 || c1.len() != 256 {
            return Err(format!("RSA-OAEP {alg}: ciphertexts repeat or are not the modulus size"));
        }
        let back = backend.decrypt_asymmetric(ka, spec, alg, &c1).await.map_err(e("decrypt"))?;
        if back.as_slice() != plaintext.as_slice() {
            return Err(format!("RSA-OAEP {alg}: the round trip changed the plaintext"));
        }
        let mut made_outside = vec![0u8; outside.ciphertext_size()];
        let n = outside
            .encrypt(outside_alg, b"from outside", &mut made_outside, None)
            .map_err(|_| "RSA-OAEP: encryption outside failed".to_owned())?
            .len();
        let back = backend.decrypt_asymmetric(ka, spec, alg, &made_outside[..n]).await.map_err(e("decrypt outside"))?;
        if back.as_slice() != b"from outside" {
            return Err(format!("RSA-OAEP {alg}: a ciphertext made with the public key does not decrypt"));
        }
        let mut bad = c1.clone();
        bad[100] ^= 0x01;
        for (what, r) in [
            ("a flipped bit", backend.decrypt_asymmetric(ka, spec, alg, &bad).await),
            ("the other algorithm", backend.decrypt_asymmetric(ka, spec, other, &c1).await),
            ("another key", backend.decrypt_asymmetric(kb, spec, alg, &c1).await),
        ] {
            if r.is_ok() {
                return Err(format!("RSA-OAEP {alg}: {what} decrypted"));
            }
        }
    }
    Ok(())
}

/// HMAC keys of a spec: the MAC verifies, is deterministic and of the hash's length, and a
/// wrong message, a wrong key, a truncated MAC or any flipped bit is refused.
pub async fn macs(backend: &dyn DynBackend, spec: KeySpec) -> Result<(), String> {
    let e = |what: &'static str| move |err: BackendError| format!("{spec}: {what}: {err}");
    let alg = *keyward_core::model::signing::MacAlgorithm::for_spec(spec).first().ok_or("no MAC algorithm")?;
    let (a, b) = (new_key_id(), new_key_id());
    let ma = backend.create_key(a, 1, spec, spec.usage()).await.map_err(e("create"))?;
    let mb = backend.create_key(b, 1, spec, spec.usage()).await.map_err(e("create"))?;
    let ka = VersionHandle { key_id: a, version: 1, material: &ma };
    let kb = VersionHandle { key_id: b, version: 1, material: &mb };
    let message = b"Keyward conformance: webhook body".as_slice();
    let mac = backend.generate_mac(ka, alg, message).await.map_err(e("generate"))?;
    if mac.len() != alg.hash().len() {
        return Err(format!("{spec}: a MAC of {} bytes", mac.len()));
    }
    if backend.generate_mac(ka, alg, message).await.map_err(e("generate"))? != mac {
        return Err(format!("{spec}: two MACs of one message differ"));
    }
    if backend.generate_mac(kb, alg, message).await.map_err(e("generate"))? == mac {
        return Err(format!("{spec}: two keys give one MAC"));
    }
    if !backend.verify_mac(ka, alg, message, &mac).await.map_err(e("verify"))? {
        return Err(format!("{spec}: the MAC does not verify"));
    }
    for (what, ok) in [
        ("another message", backend.verify_mac(ka, alg, b"other", &mac).await),
        ("another key", backend.verify_mac(kb, alg, message, &mac).await),
        ("a truncated MAC", backend.verify_mac(ka, alg, message, &mac[..mac.len() - 1]).await),
    ] {
        if ok.unwrap_or(false) {
            return Err(format!("{spec}: the MAC verifies with {what}"));
        }
    }
    for bit in 0..mac.len() * 8 {
        if backend.verify_mac(ka, alg, message, &flipped(&mac, bit)).await.unwrap_or(false) {
            return Err(format!("{spec}: the MAC with bit {bit} flipped verifies"));
        }
    }
    Ok(())
}

/// The Wycheproof vectors for ECDSA (P-256/384/521, DER), RSA-PSS, RSA PKCS#1 v1.5 and Ed25519
/// through the backend's own verification ([`DynBackend::test_verify`]): valid signatures
/// verify, invalid ones never do. Only the parameters Keyward serves run (AWS KMS's: PSS with
/// MGF1 of the same hash and a salt of the hash's length; SHA-2).
pub async fn wycheproof_signatures(backend: &dyn DynBackend) -> Result<(), String> {
    use keyward_core::model::signing::SigningAlgorithm as A;
    use wycheproof::{HashFunction, TestResult};
    let caps = backend.capabilities();
    let mut ran = 0usize;
    let mut run = |spec: KeySpec, alg: A, der: &[u8], msg: &[u8], sig: &[u8], result: TestResult, id: usize| {
        let got = backend.test_verify(spec, alg, der, Message::Raw(msg), sig);
        let ok = match (result, got) {
            (TestResult::Valid, Ok(true)) => true,
            (TestResult::Invalid, Ok(false) | Err(_)) => true,
            // "Acceptable" vectors are legacy encodings; either answer is within the spec.
            (TestResult::Acceptable, _) => true,
            _ => false,
        };
        ran += 1;
        if ok { Ok(()) } else { Err(format!("{spec} {alg}: vector {id} ({result:?}) answered otherwise")) }
    };
    let ecdsa = [
        (KeySpec::EccNistP256, A::EcdsaSha256, wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256),
        (KeySpec::EccNistP384, A::EcdsaSha384, wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384),
        (KeySpec::EccNistP521, A::EcdsaSha512, wycheproof::ecdsa::TestName::EcdsaSecp521r1Sha512),
    ];
    for (spec, alg, name) in ecdsa.into_iter().filter(|(s, ..)| caps.specs.contains(s)) {
        let set = wycheproof::ecdsa::TestSet::load(name).map_err(|e| e.to_string())?;
        for g in &set.test_groups {
            for t in &g.tests {
                run(spec, alg, &g.der, &t.msg, &t.sig, t.result, t.tc_id)?;
            }
        }
    }
    if caps.specs.contains(&KeySpec::EccNistEdwards25519) {
        let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).map_err(|e| e.to_string())?;
        for g in &set.test_groups {
            for t in &g.tests {
                run(KeySpec::EccNistEdwards25519, A::Ed25519Sha512, &g.der, &t.msg, &t.sig, t.result, t.tc_id)?;
            }
        }
    }
    let rsa_spec = |bits: usize| match bits {
        2048 => Some(KeySpec::Rsa2048),
        3072 => Some(KeySpec::Rsa3072),
        4096 => Some(KeySpec::Rsa4096),
        _ => None,
    };
    use wycheproof::rsa_pkcs1_verify::TestName as P;
    for (name, alg) in [
        (P::Rsa2048Sha256, A::RsassaPkcs1V15Sha256),
        (P::Rsa2048Sha384, A::RsassaPkcs1V15Sha384),
        (P::Rsa2048Sha512, A::RsassaPkcs1V15Sha512),
        (P::Rsa3072Sha256, A::RsassaPkcs1V15Sha256),
        (P::Rsa3072Sha384, A::RsassaPkcs1V15Sha384),
        (P::Rsa3072Sha512, A::RsassaPkcs1V15Sha512),
        (P::Rsa4096Sha256, A::RsassaPkcs1V15Sha256),
        (P::Rsa4096Sha384, A::RsassaPkcs1V15Sha384),
        (P::Rsa4096Sha512, A::RsassaPkcs1V15Sha512),
    ] {
        let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).map_err(|e| e.to_string())?;
        for g in &set.test_groups {
            let Some(spec) = rsa_spec(g.key_size).filter(|s| caps.specs.contains(s)) else { continue };
            for t in &g.tests {
                run(spec, alg, &g.der, &t.msg, &t.sig, t.result, t.tc_id)?;
            }
        }
    }
    use wycheproof::rsa_pss_verify::TestName as S;
    for name in [
        S::RsaPss2048Sha256Mgf1SaltLen32,
        S::RsaPss3072Sha256Mgf1SaltLen32,
        S::RsaPss4096Sha256Mgf1SaltLen32,
        S::RsaPss2048Sha384Mgf1SaltLen48,
        S::RsaPss4096Sha384Mgf1SaltLen48,
        S::RsaPss4096Sha512Mgf1SaltLen64,
    ] {
        let set = wycheproof::rsa_pss_verify::TestSet::load(name).map_err(|e| e.to_string())?;
        for g in &set.test_groups {
            let alg = match (g.hash, g.mgf_hash, g.salt_size) {
                (HashFunction::Sha2_256, Some(HashFunction::Sha2_256), 32) => A::RsassaPssSha256,
                (HashFunction::Sha2_384, Some(HashFunction::Sha2_384), 48) => A::RsassaPssSha384,
                (HashFunction::Sha2_512, Some(HashFunction::Sha2_512), 64) => A::RsassaPssSha512,
                _ => continue,
            };
            let Some(spec) = rsa_spec(g.key_size).filter(|s| caps.specs.contains(s)) else { continue };
            for t in &g.tests {
                run(spec, alg, &g.der, &t.msg, &t.sig, t.result, t.tc_id)?;
            }
        }
    }
    if ran < 500 { Err(format!("only {ran} signature vectors ran")) } else { Ok(()) }
}

/// The Wycheproof RSAES-OAEP vectors of the algorithms the backend offers (SHA-1 and SHA-256,
/// MGF1 with the same hash, 2048-4096-bit keys, no label: what the API can ask for) through the
/// backend's own RSA-OAEP decryption ([`DynBackend::test_oaep_decrypt`]). A valid vector must
/// decrypt to its message; an invalid one must fail.
pub async fn wycheproof_rsa_oaep(backend: &dyn DynBackend) -> Result<(), String> {
    use keyward_core::model::signing::EncryptionAlgorithm as E;
    use wycheproof::rsa_oaep::TestName as N;
    use wycheproof::{HashFunction, TestResult};
    let offered = &backend.capabilities().rsa_oaep;
    let (mut ran, mut labelled) = (std::collections::BTreeMap::<&str, usize>::new(), 0usize);
    for name in [
        N::Rsa2048Sha1Mgf1Sha1,
        N::Rsa2048Sha256Mgf1Sha256,
        N::Rsa3072Sha256Mgf1Sha256,
        N::Rsa4096Sha256Mgf1Sha256,
        N::RsaMisc,
    ] {
        let set = wycheproof::rsa_oaep::TestSet::load(name).map_err(|e| e.to_string())?;
        for g in &set.test_groups {
            let algorithm = match (g.hash, g.mgf_hash) {
                (HashFunction::Sha1, HashFunction::Sha1) => E::RsaesOaepSha1,
                (HashFunction::Sha2_256, HashFunction::Sha2_256) => E::RsaesOaepSha256,
                _ => continue,
            };
            if !offered.contains(&algorithm) || ![2048, 3072, 4096].contains(&g.key_size) {
                continue;
            }
            let k = &g.key;
            let key = RsaTestKey {
                pkcs8: &g.pkcs8,
                n: &k.n,
                e: &k.e,
                d: &k.d,
                p: &k.p,
                q: &k.q,
                dp: &k.d1,
                dq: &k.d2,
                qinv: &k.c,
            };
            for t in &g.tests {
                if !t.label.is_empty() {
                    // The API binds no label (as AWS KMS); such vectors cannot be asked for.
                    labelled += 1;
                    continue;
                }
                let got = backend.test_oaep_decrypt(algorithm, key, &t.ct);
                let ok = match (t.result, &got) {
                    (TestResult::Valid, Ok(pt)) => pt.as_slice() == t.pt.as_slice(),
                    (TestResult::Invalid, Err(BackendError::DecryptFailed(_))) => true,
                    (TestResult::Acceptable, _) => true,
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "{algorithm} {} bits: vector {} ({:?}) answered {got:?}",
                        g.key_size, t.tc_id, t.result
                    ));
                }
                *ran.entry(algorithm.as_str()).or_default() += 1;
            }
        }
    }
    // Every algorithm offered met its vectors (at least the 2048-bit file's, ~30 each).
    for a in offered {
        let n = ran.get(a.as_str()).copied().unwrap_or(0);
        if n < 30 {
            return Err(format!("only {n} {a} vectors ran ({labelled} with a label skipped)"));
        }
    }
    Ok(())
}

/// The Wycheproof HMAC-SHA-256/384/512 vectors (full-length tags) through the backend's own
/// HMAC ([`DynBackend::test_mac`]).
pub async fn wycheproof_hmac(backend: &dyn DynBackend) -> Result<(), String> {
    use keyward_core::model::signing::MacAlgorithm as M;
    use wycheproof::TestResult;
    use wycheproof::mac::TestName as N;
    let mut ran = 0usize;
    for (name, alg) in [(N::HmacSha256, M::HmacSha256), (N::HmacSha384, M::HmacSha384), (N::HmacSha512, M::HmacSha512)]
    {
        let set = wycheproof::mac::TestSet::load(name).map_err(|e| e.to_string())?;
        for g in set.test_groups.iter().filter(|g| g.tag_size == alg.hash().len() * 8) {
            // Keys of the sizes a key of this algorithm may have.
            for t in g.tests.iter().filter(|t| alg.key_sizes().contains(&t.key.len())) {
                let mac =
                    backend.test_mac(alg, &t.key, &t.msg).map_err(|e| format!("{alg} vector {}: {e}", t.tc_id))?;
                let equal = mac.as_slice() == t.tag.as_ref();
                match t.result {
                    TestResult::Valid if !equal => return Err(format!("{alg} vector {}: another MAC", t.tc_id)),
                    TestResult::Invalid if equal => {
                        return Err(format!("{alg} vector {}: an invalid tag matches", t.tc_id));
                    }
                    _ => {}
                }
                ran += 1;
            }
        }
    }
    if ran < 50 { Err(format!("only {ran} HMAC vectors ran")) } else { Ok(()) }
}

/// Two encryptions of the same plaintext differ (randomised).
pub async fn ciphertexts_differ(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"iv");
    let ctx = context_for(b"iv");
    let a = backend.encrypt(h, b"same", &ctx, &aad).await.map_err(|e| e.to_string())?;
    let b = backend.encrypt(h, b"same", &ctx, &aad).await.map_err(|e| e.to_string())?;
    if a == b {
        return Err("two encryptions of the same plaintext were identical".into());
    }
    Ok(())
}

/// The declared maximum plaintext is accepted (checked in `round_trip`); one byte more is not
/// silently truncated: it either round-trips or is refused.
pub async fn max_plaintext(backend: &dyn DynBackend) -> Result<(), String> {
    let id = new_key_id();
    let m = backend.create_key(id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"max");
    let ctx = context_for(b"max");
    let big = vec![7u8; backend.capabilities().max_plaintext + 1];
    match backend.encrypt(h, &big, &ctx, &aad).await {
        Err(_) => Ok(()),
        Ok(sealed) => {
            let full = aad(sealed.algorithm, &sealed.params);
            let back = backend
                .decrypt(h, sealed.algorithm, &sealed.params, &sealed.ciphertext, &ctx, &full)
                .await
                .map_err(|e| e.to_string())?;
            if back.as_slice() == big.as_slice() { Ok(()) } else { Err("oversized plaintext was altered".into()) }
        }
    }
}

/// Random output has the requested length and is not constant.
pub async fn random_bytes(backend: &dyn DynBackend) -> Result<(), String> {
    for len in [1usize, 32, 1024] {
        let r = backend.generate_random(len).await.map_err(|e| e.to_string())?;
        if r.len() != len {
            return Err(format!("asked for {len} random bytes, got {}", r.len()));
        }
    }
    let a = backend.generate_random(32).await.map_err(|e| e.to_string())?;
    let b = backend.generate_random(32).await.map_err(|e| e.to_string())?;
    if a == b {
        return Err("two random draws were equal".into());
    }
    Ok(())
}

/// A smoke test of the generator: 64 KiB whose bit balance, byte coverage and draws look
/// random (catches constant, counter-like or stuck generators, not subtle bias).
pub async fn random_quality(backend: &dyn DynBackend) -> Result<(), String> {
    let mut all = Vec::with_capacity(64 * 1024);
    let mut draws = std::collections::HashSet::new();
    for _ in 0..64 {
        let r = backend.generate_random(1024).await.map_err(|e| e.to_string())?;
        if !draws.insert(r[..32].to_vec()) {
            return Err("a 32-byte draw repeated".into());
        }
        all.extend_from_slice(&r);
    }
    let ones: u64 = all.iter().map(|b| u64::from(b.count_ones())).sum();
    let bits = all.len() as u64 * 8;
    // Monobit: within about 6 standard deviations of half.
    let deviation = ones.abs_diff(bits / 2);
    if deviation > 2_200 {
        return Err(format!("{ones} of {bits} bits set"));
    }
    let mut seen = [0u32; 256];
    for b in &all {
        seen[usize::from(*b)] += 1;
    }
    if let Some((value, count)) = seen.iter().enumerate().find(|(_, c)| !(128..=384).contains(*c)) {
        return Err(format!("byte {value} appeared {count} times in 65,536 (expected about 256)"));
    }
    Ok(())
}

/// A healthy instance says so.
pub async fn health(backend: &dyn DynBackend) -> Result<(), String> {
    backend.health().await.map_err(|e| format!("health check failed: {e}"))
}

fn expect_decrypt_failed<T>(r: Result<T, BackendError>, what: &str) -> Result<(), String> {
    match r {
        Err(BackendError::DecryptFailed(_)) => Ok(()),
        Ok(_) => Err(format!("tampered {what} decrypted")),
        Err(e) => Err(format!("tampered {what} gave the wrong error: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use keyward_core::model::key::Protection;
    use keyward_core::ports::backend::{AadFn, Backend, Capabilities, Sealed};
    use zeroize::Zeroizing;

    use super::*;

    /// A backend that "encrypts" by copying and whose random bytes are zeros.
    #[derive(Debug)]
    struct Broken(Capabilities);

    impl Backend for Broken {
        fn kind(&self) -> &'static str {
            "broken"
        }
        fn capabilities(&self) -> &Capabilities {
            &self.0
        }
        async fn create_key(
            &self,
            _: KeyId,
            _: u32,
            _: KeySpec,
            _: KeyUsage,
        ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
            Ok(Zeroizing::new(vec![1]))
        }
        async fn encrypt(
            &self,
            _: VersionHandle<'_>,
            plaintext: &[u8],
            _: &EncryptionContext,
            _: AadFn<'_>,
        ) -> Result<Sealed, BackendError> {
            Ok(Sealed { algorithm: 9, params: Vec::new(), ciphertext: plaintext.to_vec() })
        }
        async fn decrypt(
            &self,
            _: VersionHandle<'_>,
            _: u8,
            _: &[u8],
            ciphertext: &[u8],
            _: &EncryptionContext,
            _: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
            Ok(Zeroizing::new(ciphertext.to_vec()))
        }
        async fn generate_random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, BackendError> {
            Ok(Zeroizing::new(vec![0; len]))
        }
        async fn destroy(&self, _: VersionHandle<'_>) -> Result<(), BackendError> {
            Ok(())
        }
        async fn health(&self) -> Result<(), BackendError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_failing_check_is_reported_not_just_the_first() {
        let caps = Capabilities {
            specs: vec![KeySpec::Aes256],
            max_plaintext: 4096,
            protection: Protection::Software,
            material_leaves: true,
            fixed_nonce_testing: false,
            destroy_is_immediate: true,
            raw_gcm: false,
            signs_digests: true,
            rsa_oaep: Vec::new(),
            import: Vec::new(),
            import_specs: Vec::new(),
        };
        let Err(report) = run_all(&Broken(caps)).await else { unreachable!("a broken backend passed") };
        for check in ["context_binding", "rejects_tampering", "ciphertexts_differ", "random_quality"] {
            assert!(report.contains(&format!("{check}: ")), "{check} missing from: {report}");
        }
        assert!(report.contains("passed: round_trip"), "the passing checks are listed too: {report}");
    }
}
