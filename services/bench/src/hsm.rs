//! H0 for S8: a raw `C_Encrypt` loop (AES-256-GCM, 1 KiB) on the same SoftHSM2 token the
//! service uses, with a token key made like the backend's (sensitive, non-extractable), one
//! thread per session. The token comes from `scripts/start-softhsm.sh`.

use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// Where the token is.
#[derive(Debug, Clone)]
pub struct Token {
    pub module: String,
    pub label: String,
    pub pin_file: String,
}

impl Token {
    /// The token named by `KEYWARD_TEST_PKCS11_*`.
    pub fn from_env() -> Result<Self, String> {
        let var =
            |n: &str| std::env::var(n).map_err(|_| format!("{n} is not set: run eval \"$(scripts/start-softhsm.sh)\""));
        Ok(Self {
            module: var("KEYWARD_TEST_PKCS11_MODULE")?,
            label: var("KEYWARD_TEST_PKCS11_TOKEN")?,
            pin_file: var("KEYWARD_TEST_PKCS11_PIN_FILE")?,
        })
    }
}

/// Opens the token: the module initialised, its slot, and a logged-in session.
fn login(token: &Token) -> Result<(Pkcs11, Slot, Session), String> {
    let ctx = Pkcs11::new(&token.module).map_err(|e| e.to_string())?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(|e| e.to_string())?;
    let slot = ctx
        .get_slots_with_token()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|i| i.label().trim_end() == token.label))
        .ok_or("token not found")?;
    let pin = std::fs::read_to_string(&token.pin_file).map_err(|e| e.to_string())?;
    let setup = ctx.open_rw_session(slot).map_err(|e| e.to_string())?;
    setup.login(UserType::User, Some(&AuthPin::from(pin.trim().to_owned()))).map_err(|e| e.to_string())?;
    Ok((ctx, slot, setup))
}

/// Runs `op` on one session per thread for `duration`; the total count.
fn per_session(
    ctx: &Pkcs11,
    slot: Slot,
    sessions: usize,
    duration: Duration,
    op: impl Fn(&Session, u64) -> Result<(), String> + Sync,
) -> Result<u64, String> {
    let counts: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..sessions)
            .map(|_| {
                let op = &op;
                scope.spawn(move || -> Result<u64, String> {
                    let session = ctx.open_rw_session(slot).map_err(|e| e.to_string())?;
                    let started = Instant::now();
                    let mut n: u64 = 0;
                    while started.elapsed() < duration {
                        op(&session, n)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("worker panicked".into()))).collect()
    });
    counts.into_iter().sum()
}

/// Encryptions per second with `sessions` threads for `duration`.
pub fn raw_encrypt_rate(token: &Token, sessions: usize, duration: Duration) -> Result<f64, String> {
    let (ctx, slot, setup) = login(token)?;
    // The same template the backend uses, so both measure the same kind of token key.
    let template = keyward_backend_pkcs11::aes_key_template(b"keyward-bench-h0".to_vec(), b"keyward-bench-h0".to_vec());
    let key = setup.generate_key(&Mechanism::AesKeyGen, &template).map_err(|e| e.to_string())?;
    let plaintext = vec![0x5Au8; 1024];
    let aad = b"bench".to_vec();
    let total = per_session(&ctx, slot, sessions, duration, |session, n| {
        let mut iv = [0u8; 12];
        iv[4..].copy_from_slice(&n.to_be_bytes());
        let gcm = GcmParams::new(&mut iv, &aad, 128.into()).map_err(|e| e.to_string())?;
        session.encrypt(&Mechanism::AesGcm(gcm), key, &plaintext).map(|_| ()).map_err(|e| e.to_string())
    })?;
    let _ = setup.destroy_object(key);
    drop(setup);
    let _ = ctx.finalize();
    Ok(total as f64 / duration.as_secs_f64())
}

/// ECDSA P-256 signatures of a 32-byte digest per second with `C_Sign` (`CKM_ECDSA`), with a
/// key pair made like the backend's (private half sensitive, non-extractable), one thread per
/// session.
pub fn raw_sign_rate(token: &Token, sessions: usize, duration: Duration) -> Result<f64, String> {
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    let (ctx, slot, setup) = login(token)?;
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let public = [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::EcParams(p256),
        Attribute::Verify(true),
    ];
    let private = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ];
    let (_, key) = setup.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).map_err(|e| e.to_string())?;
    let digest = [0x5Au8; 32];
    let total = per_session(&ctx, slot, sessions, duration, |session, _| {
        session.sign(&Mechanism::Ecdsa, key, &digest).map(|_| ()).map_err(|e| e.to_string())
    })?;
    drop(setup);
    let _ = ctx.finalize();
    Ok(total as f64 / duration.as_secs_f64())
}
