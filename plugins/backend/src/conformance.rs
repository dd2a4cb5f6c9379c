//! The conformance suite: behaviour every backend kind must show, each check gated by the
//! capability it needs. A backend crate runs it from its tests with a live instance:
//! `keyward_backend::conformance::run_all(&backend).await`.

use keyward_core::model::ids::KeyId;
use keyward_core::model::key::KeySpec;
use keyward_core::ports::backend::{BackendError, DynBackend, VersionHandle};
use uuid::Uuid;

/// Runs every check the backend's capabilities allow. Returns the first failure.
pub async fn run_all(backend: &dyn DynBackend) -> Result<(), String> {
    if backend.capabilities().specs.contains(&KeySpec::Aes256) {
        round_trip(backend).await?;
        rejects_tampering(backend).await?;
        rejects_other_key(backend).await?;
        ciphertexts_differ(backend).await?;
        max_plaintext(backend).await?;
    }
    random_bytes(backend).await?;
    health(backend).await
}

fn key_id(n: u128) -> KeyId {
    KeyId(Uuid::from_u128(n))
}

fn aad_for(tag: &'static [u8]) -> impl Fn(u8, &[u8]) -> Vec<u8> + Send + Sync {
    move |alg, params| {
        let mut v = tag.to_vec();
        v.push(alg);
        v.extend_from_slice(params);
        v
    }
}

/// Encrypt then decrypt returns the plaintext, for several sizes.
pub async fn round_trip(backend: &dyn DynBackend) -> Result<(), String> {
    let id = key_id(1);
    let material = backend.create_key(id, 1, KeySpec::Aes256).await.map_err(|e| e.to_string())?;
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    for len in [1usize, 15, 16, 17, 1024, backend.capabilities().max_plaintext] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let aad = aad_for(b"round-trip");
        let sealed = backend.encrypt(handle, &plaintext, &aad).await.map_err(|e| e.to_string())?;
        let full_aad = aad(sealed.algorithm, &sealed.params);
        let back = backend
            .decrypt(handle, sealed.algorithm, &sealed.params, &sealed.ciphertext, &full_aad)
            .await
            .map_err(|e| format!("decrypt of {len} bytes failed: {e}"))?;
        if back.as_slice() != plaintext.as_slice() {
            return Err(format!("round trip of {len} bytes returned other bytes"));
        }
    }
    Ok(())
}

/// A flipped bit in the ciphertext, the params or the associated data fails authentication.
pub async fn rejects_tampering(backend: &dyn DynBackend) -> Result<(), String> {
    let id = key_id(2);
    let material = backend.create_key(id, 1, KeySpec::Aes256).await.map_err(|e| e.to_string())?;
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    let aad = aad_for(b"tamper");
    let sealed = backend.encrypt(handle, b"attack at dawn", &aad).await.map_err(|e| e.to_string())?;
    let good_aad = aad(sealed.algorithm, &sealed.params);
    for i in 0..sealed.ciphertext.len() * 8 {
        let mut ct = sealed.ciphertext.clone();
        ct[i / 8] ^= 1 << (i % 8);
        expect_decrypt_failed(
            backend.decrypt(handle, sealed.algorithm, &sealed.params, &ct, &good_aad).await,
            "ciphertext bit",
        )?;
    }
    for i in 0..sealed.params.len() * 8 {
        let mut params = sealed.params.clone();
        params[i / 8] ^= 1 << (i % 8);
        let aad2 = aad(sealed.algorithm, &params);
        expect_decrypt_failed(
            backend.decrypt(handle, sealed.algorithm, &params, &sealed.ciphertext, &aad2).await,
            "params bit",
        )?;
    }
    let mut bad_aad = good_aad.clone();
    bad_aad[0] ^= 1;
    expect_decrypt_failed(
        backend.decrypt(handle, sealed.algorithm, &sealed.params, &sealed.ciphertext, &bad_aad).await,
        "associated data",
    )?;
    expect_decrypt_failed(
        backend
            .decrypt(
                handle,
                sealed.algorithm,
                &sealed.params,
                &sealed.ciphertext[..sealed.ciphertext.len() - 1],
                &good_aad,
            )
            .await,
        "truncated ciphertext",
    )
}

/// Material of another key or version does not decrypt.
pub async fn rejects_other_key(backend: &dyn DynBackend) -> Result<(), String> {
    let id = key_id(3);
    let m1 = backend.create_key(id, 1, KeySpec::Aes256).await.map_err(|e| e.to_string())?;
    let m2 = backend.create_key(id, 2, KeySpec::Aes256).await.map_err(|e| e.to_string())?;
    let aad = aad_for(b"other");
    let h1 = VersionHandle { key_id: id, version: 1, material: &m1 };
    let h2 = VersionHandle { key_id: id, version: 2, material: &m2 };
    let sealed = backend.encrypt(h1, b"secret", &aad).await.map_err(|e| e.to_string())?;
    let full = aad(sealed.algorithm, &sealed.params);
    match backend.decrypt(h2, sealed.algorithm, &sealed.params, &sealed.ciphertext, &full).await {
        Err(BackendError::DecryptFailed(_) | BackendError::InvalidMaterial(_)) => Ok(()),
        Ok(_) => Err("a blob decrypted under another key version".into()),
        Err(e) => Err(format!("decrypting under another version failed with the wrong error: {e}")),
    }
}

/// Two encryptions of the same plaintext differ (randomised).
pub async fn ciphertexts_differ(backend: &dyn DynBackend) -> Result<(), String> {
    let id = key_id(4);
    let m = backend.create_key(id, 1, KeySpec::Aes256).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"iv");
    let a = backend.encrypt(h, b"same", &aad).await.map_err(|e| e.to_string())?;
    let b = backend.encrypt(h, b"same", &aad).await.map_err(|e| e.to_string())?;
    if a == b {
        return Err("two encryptions of the same plaintext were identical".into());
    }
    Ok(())
}

/// The declared maximum plaintext is accepted (checked in `round_trip`); one byte more is not
/// silently truncated: it either round-trips or is refused.
pub async fn max_plaintext(backend: &dyn DynBackend) -> Result<(), String> {
    let id = key_id(5);
    let m = backend.create_key(id, 1, KeySpec::Aes256).await.map_err(|e| e.to_string())?;
    let h = VersionHandle { key_id: id, version: 1, material: &m };
    let aad = aad_for(b"max");
    let big = vec![7u8; backend.capabilities().max_plaintext + 1];
    match backend.encrypt(h, &big, &aad).await {
        Err(_) => Ok(()),
        Ok(sealed) => {
            let full = aad(sealed.algorithm, &sealed.params);
            let back = backend
                .decrypt(h, sealed.algorithm, &sealed.params, &sealed.ciphertext, &full)
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
