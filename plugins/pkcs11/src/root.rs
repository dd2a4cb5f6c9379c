//! A token key that holds another backend's root of trust: the software backend's material is
//! sealed by it (AES-256-GCM inside the token), so the database holds nothing usable without
//! the token.

use std::sync::Arc;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use keyward_backend::{BackendError, RootWrapper};
use zeroize::Zeroizing;

use crate::backend::{aes_key_template, decrypt_failure, gcm, mapped};
use crate::token::{Lease, OpError, OpResult, Token};

const NONCE_LEN: usize = 12;

/// The root key in the token, found (or created once) by label.
#[derive(Debug)]
pub struct HsmRoot {
    token: Arc<Token>,
    /// CKA_ID of the key: 8 random bytes chosen when it was created, also its stable id.
    id: [u8; 8],
}

impl HsmRoot {
    /// Finds the key labelled `label`, or generates it (sensitive, non-extractable).
    pub(crate) fn open(token: Arc<Token>, label: &str) -> Result<Self, BackendError> {
        // The holder of another backend's root must be there at start (a token absent then
        // started its own instance down): try once more, and fail with the token's reason.
        if !token.is_connected() {
            token.reconnect()?;
        }
        let label = label.to_owned();
        let id = token
            .run_blocking(|lease| {
                let found = lease.session.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Token(true),
                    Attribute::Label(label.clone().into_bytes()),
                ])?;
                if let Some(handle) = found.first() {
                    return read_id(lease, *handle);
                }
                let mut id = [0u8; 8];
                lease.session.generate_random_slice(&mut id)?;
                let template = aes_key_template(id.to_vec(), label.clone().into_bytes());
                lease.session.generate_key(&Mechanism::AesKeyGen, &template)?;
                tracing::warn!(label = %label, "generated a root key in the token; back up the token");
                Ok(id)
            })
            .map_err(mapped)?;
        Ok(Self { token, id })
    }

    fn gcm(&self, aad: &[u8], nonce: &[u8], input: &[u8], decrypt: bool) -> OpResult<Vec<u8>> {
        self.token.run_blocking(|lease| {
            let handle = lease.find(&self.id)?.ok_or_else(|| {
                OpError::Backend(BackendError::Unavailable("the token no longer holds the root key".into()))
            })?;
            Ok(gcm(&lease.session, handle, nonce, aad, input, decrypt)?)
        })
    }
}

fn read_id(lease: &Lease<'_>, handle: ObjectHandle) -> OpResult<[u8; 8]> {
    let attrs = lease.session.get_attributes(handle, &[AttributeType::Id])?;
    for a in attrs {
        if let Attribute::Id(id) = a
            && let Ok(id) = <[u8; 8]>::try_from(id.as_slice())
        {
            return Ok(id);
        }
    }
    Err(OpError::Backend(BackendError::Internal("the root key in the token has an unexpected CKA_ID".into())))
}

impl RootWrapper for HsmRoot {
    fn id(&self) -> [u8; 8] {
        self.id
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, BackendError> {
        let nonce = self
            .token
            .run_blocking(|lease| Ok(lease.session.generate_random_vec(NONCE_LEN as u32)?))
            .map_err(mapped)?;
        let ct = self.gcm(aad, &nonce, plaintext, false).map_err(mapped)?;
        Ok([nonce.as_slice(), &ct].concat())
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let bad = || BackendError::InvalidMaterial("material does not unwrap for this key version".into());
        let (nonce, ct) = sealed.split_at_checked(NONCE_LEN).ok_or_else(bad)?;
        match self.gcm(aad, nonce, ct, true).map_err(decrypt_failure) {
            Ok(plain) => Ok(Zeroizing::new(plain)),
            Err(BackendError::DecryptFailed(_)) => Err(bad()),
            Err(e) => Err(e),
        }
    }
}
