//! `keyward key import --material FILE`: the material is wrapped on the operator's machine
//! (RSA-AES key wrap: a fresh AES-256 key under the server's RSA-OAEP wrapping key, the
//! material under that key with AES key wrap with padding), so it never travels unwrapped.

use std::path::Path;

use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyward_client::api::{ApiError, Method, encode_path};
use serde_json::json;
use zeroize::Zeroizing;

use crate::key_cmd::{CommandError, failed};
use crate::remote_cmd::Remote;

/// The algorithms tried, best first: a token without RSA-OAEP SHA-256 offers SHA-1 only.
const ALGORITHMS: [&str; 2] = ["RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1"];

fn invalid(message: String) -> CommandError {
    CommandError { exit: 2, message }
}

/// Gets import parameters for `key` and wraps the file's material under them. Returns the
/// import token and the wrapped material, both base64.
pub(crate) fn wrap_for(r: &Remote, key: &str, file: &Path) -> Result<(String, String), CommandError> {
    let material =
        Zeroizing::new(std::fs::read(file).map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?);
    if material.is_empty() {
        return Err(invalid(format!("{} is empty", file.display())));
    }
    let path = format!("/v1/keys/{}/import-parameters", encode_path(key));
    let mut last = None;
    for algorithm in ALGORITHMS {
        let body = json!({"wrapping_algorithm": algorithm, "wrapping_key_spec": "RSA_4096"});
        match r.try_call(Method::POST, &path, Some(body)) {
            Ok(answer) => {
                let der = B64
                    .decode(answer["public_key"].as_str().unwrap_or_default())
                    .map_err(|_| CommandError::from("the server sent no wrapping public key".to_owned()))?;
                let wrapped = wrap(&der, algorithm, &material)?;
                let token = answer["import_token"].as_str().unwrap_or_default().to_owned();
                return Ok((token, B64.encode(wrapped)));
            }
            Err(e @ ApiError::Problem { .. }) if e.to_string().contains("UnsupportedOperation") => last = Some(e),
            Err(e) => return Err(failed("GetParametersForImport", &e)),
        }
    }
    Err(last.map_or_else(|| "no wrapping algorithm".to_owned().into(), |e| failed("GetParametersForImport", &e)))
}

/// RSA-AES key wrap of `material` under an RSA public key (DER SubjectPublicKeyInfo).
fn wrap(public_key: &[u8], algorithm: &str, material: &[u8]) -> Result<Vec<u8>, CommandError> {
    let bad = |what: &str| CommandError::from(format!("wrapping failed: {what}"));
    let key = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_key).map_err(|_| bad("public key"))?)
        .map_err(|_| bad("public key"))?;
    let oaep = if algorithm.ends_with("SHA_256") { &OAEP_SHA256_MGF1SHA256 } else { &OAEP_SHA1_MGF1SHA1 };
    let mut aes = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(aes.as_mut_slice()).map_err(|_| bad("randomness"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key.encrypt(oaep, aes.as_slice(), &mut out, None).map_err(|_| bad("RSA-OAEP"))?.len();
    out.truncate(n);
    let mut wrapped = vec![0u8; material.len() + 16];
    let kek = AesKek::new(&AES_256, aes.as_slice()).map_err(|_| bad("AES key"))?;
    let m = kek.wrap_with_padding(material, &mut wrapped).map_err(|_| bad("AES key wrap"))?.len();
    wrapped.truncate(m);
    out.extend_from_slice(&wrapped);
    Ok(out)
}

/// Material wrapped elsewhere, and its token file.
pub(crate) fn read_wrapped(encrypted: &Path, token: &Path) -> Result<(String, String), CommandError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| invalid(format!("cannot read {}: {e}", p.display())));
    let token = String::from_utf8(read(token)?).map_err(|_| invalid("the token file is not base64 text".into()))?;
    Ok((token.trim().to_owned(), B64.encode(read(encrypted)?)))
}
