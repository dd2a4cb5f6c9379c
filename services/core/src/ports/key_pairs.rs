//! The key-pair port: where GenerateDataKeyPair's pairs come from. The private half is returned
//! to the caller (or only its blob), so it is made in process and sealed under the caller's
//! symmetric key through that key's own backend.

use zeroize::Zeroizing;

use crate::model::key::KeySpec;
use crate::ports::backend::{BackendError, BoxFuture};

/// A fresh key pair.
#[derive(Debug)]
pub struct KeyPair {
    /// The public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The private key, DER PKCS#8.
    pub private_key: Zeroizing<Vec<u8>>,
}

/// Makes key pairs of the asymmetric specs.
pub trait KeyPairs: Send + Sync + std::fmt::Debug {
    /// A new pair of `spec` (an asymmetric spec), made off the request threads (an RSA-4096
    /// pair takes seconds).
    fn generate(&self, spec: KeySpec) -> BoxFuture<'_, Result<KeyPair, BackendError>>;
}
