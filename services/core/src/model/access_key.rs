//! Access keys: SigV4 credentials that Keyward issues, each bound to a principal, its groups
//! and a default namespace. The secret is stored sealed by a backend, never in clear.

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::model::ids::{KeyId, Namespace};
use crate::model::principal::Principal;
use crate::ports::backend::Sealed;

/// Length of an access key id: `KW` and 18 characters of the base32 alphabet (`A-Z2-7`).
pub const ACCESS_KEY_ID_LEN: usize = 20;

/// Random bytes in a secret: 40 characters of standard base64, the length AWS tools expect.
pub const SECRET_BYTES: usize = 30;

/// A stored access key. `material` and `sealed` are opaque to everyone but the backend
/// named in `backend`, which holds the sealing key.
#[derive(Clone)]
pub struct AccessKeyRecord {
    /// The access key id (`KW...`).
    pub id: String,
    /// The principal requests signed with it act as (groups included).
    pub principal: Principal,
    /// Where CreateKey puts keys when the request names no namespace.
    pub default_namespace: Namespace,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// Who issued it (a principal uid).
    pub created_by: String,
    /// The backend instance that sealed the secret.
    pub backend: String,
    /// The sealing key's id inside that backend.
    pub seal_key_id: KeyId,
    /// The sealing key's material as the backend returned it (wrapped, or a handle).
    pub material: Zeroizing<Vec<u8>>,
    /// The secret, sealed.
    pub sealed: Sealed,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("id", &self.id)
            .field("principal", &self.principal.to_string())
            .field("default_namespace", &self.default_namespace)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Whether a string has the shape of a Keyward access key id.
pub fn is_access_key_id(s: &str) -> bool {
    s.len() == ACCESS_KEY_ID_LEN
        && s.starts_with("KW")
        && s.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// An access key id from random bytes (base32, `A-Z2-7`).
pub fn access_key_id_from(random: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("KW");
    id.extend(random.iter().take(ACCESS_KEY_ID_LEN - 2).map(|b| char::from(ALPHABET[usize::from(b & 31)])));
    id
}

/// The associated data binding a sealed secret to its access key id.
pub fn seal_aad(access_key_id: &str, algorithm: u8, params: &[u8]) -> Vec<u8> {
    let mut aad = b"keyward-access-key/v1\n".to_vec();
    aad.extend_from_slice(access_key_id.as_bytes());
    aad.push(b'\n');
    aad.push(algorithm);
    aad.extend_from_slice(params);
    aad
}

/// The secret as a client configures it.
pub fn secret_text(random: &[u8]) -> Zeroizing<String> {
    use base64::Engine as _;
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(random))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape() {
        let id = access_key_id_from(&[0, 1, 2, 31, 32, 255, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
        assert!(is_access_key_id(&id), "{id}");
        assert!(!is_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(!is_access_key_id("KW1234567890123456789"));
    }

    #[test]
    fn principals_parse_strictly() {
        let p = Principal::from_uid("Keyward::User::\"alice\"", vec!["payments".into()]).unwrap();
        assert_eq!(p.to_string(), "Keyward::User::\"alice\"");
        assert!(Principal::from_uid("Keyward::Service::\"ci\"", vec![]).is_ok());
        for bad in ["alice", "Keyward::Group::\"g\"", "Keyward::User::\"\"", "Keyward::User::\"a\"b\""] {
            assert!(Principal::from_uid(bad, vec![]).is_err(), "{bad}");
        }
        assert!(Principal::from_uid("Keyward::User::\"a\"", vec![String::new()]).is_err());
    }

    #[test]
    fn secrets_are_40_characters() {
        assert_eq!(secret_text(&[7u8; SECRET_BYTES]).len(), 40);
    }
}
