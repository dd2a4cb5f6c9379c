//! Namespace default keys: `alias/keyward/<namespace>` names a key Keyward makes on first use,
//! so an application can encrypt without anyone creating a key first. The key is the
//! service's (owned by the system principal), AES-256 on the namespace's default backend,
//! rotated yearly, and usable by whoever the policies allow to use the namespace's keys. Its
//! alias and its lifecycle are Keyward's: callers cannot repoint or delete the alias, nor
//! disable, delete or reconfigure the key.

use chrono::Duration;

use super::admin::new_key_id;
use super::{KeyService, Scope, backend_err};
use crate::error::{Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::context::EncryptionContext;
use crate::model::ids::{AliasName, KeyId, Namespace};
use crate::model::key::{KeyRecord, KeySpec};
use crate::model::principal::Principal;
use crate::model::version::VersionRecord;
use crate::operation::{Action, Operation};
use crate::ports::backend::DynBackend as _;
use crate::ports::store::Write;

/// Aliases under this prefix name namespace default keys and are reserved to Keyward.
pub const DEFAULT_KEY_ALIAS_PREFIX: &str = "alias/keyward/";

/// Days between a default key's rotations.
pub const DEFAULT_KEY_ROTATION_DAYS: u32 = 365;

/// The namespace whose default key `alias` names, if it names one.
pub fn default_key_namespace(alias: &AliasName) -> Option<Namespace> {
    alias.as_str().strip_prefix(DEFAULT_KEY_ALIAS_PREFIX).and_then(|ns| Namespace::parse(ns).ok())
}

/// Refuses a caller's change of an alias in the reserved prefix.
pub(super) fn ensure_not_reserved(alias: &AliasName) -> Result<()> {
    if alias.as_str().starts_with(DEFAULT_KEY_ALIAS_PREFIX) {
        return Err(Error::invalid(format!(
            "aliases under `{DEFAULT_KEY_ALIAS_PREFIX}` name namespace default keys and are managed by Keyward"
        ))
        .with_detail(crate::error::Detail::InvalidAliasName));
    }
    Ok(())
}

/// Whether a key is the service's own (a namespace default key).
pub fn is_service_managed(key: &KeyRecord) -> bool {
    key.owner == Principal::system().to_string()
}

/// Refuses a caller's management of a service-managed key.
pub(super) fn ensure_caller_managed(key: &KeyRecord, op: Operation) -> Result<()> {
    if is_service_managed(key) {
        return Err(Error::new(
            ErrorCode::UnsupportedOperation,
            format!("{op} is not available on a namespace default key: Keyward manages its lifecycle"),
        ));
    }
    Ok(())
}

impl KeyService {
    /// For an encryption naming a namespace default key that does not exist yet: makes it
    /// (as the system, audited, with the requester named) when the caller could use it, and
    /// answers its id. `None`: not such a request, or the caller could not use the key (the
    /// caller then gets the answer for any unknown key).
    pub(super) async fn default_key(&self, scope: &mut Scope, alias: &AliasName) -> Result<Option<KeyId>> {
        let encrypts = matches!(
            scope.operation,
            Operation::Encrypt
                | Operation::GenerateDataKey
                | Operation::GenerateDataKeyWithoutPlaintext
                | Operation::ReEncrypt
        );
        let Some(namespace) = default_key_namespace(alias).filter(|_| encrypts) else {
            return Ok(None);
        };
        let key = self.new_default_key(namespace);
        if scope.dry_run {
            // The decision the first use would get, about the key it would make; nothing made.
            let action = Self::encrypting_action(scope.operation);
            let ctx = EncryptionContext::default();
            return self.authorize_key(scope, action, &key, &ctx).and_then(|_| Err(Error::dry_run_complete()));
        }
        if !self.could_use(scope, &key)? {
            return Ok(None);
        }
        let requested_by = scope.principal()?.to_string();
        let id = key.id;
        let created = self
            .system(Operation::CreateKey, async |s, scope| {
                scope.details.insert("trigger".into(), "namespace_default_key".into());
                scope.details.insert("requested_by".into(), requested_by.clone());
                s.stage_default_key(scope, key, alias.clone()).await
            })
            .await;
        match created {
            Ok(()) => {
                metrics::counter!("keyward_default_keys_created_total").increment(1);
                Ok(Some(id))
            }
            // Another request (or replica) made it first: use theirs.
            Err(e) if e.code() == ErrorCode::Conflict => {
                let theirs = self.store.alias(alias).await.map_err(super::store_err)?;
                Ok(theirs.map(|a| a.key_id))
            }
            Err(e) => Err(e),
        }
    }

    /// The record a namespace's default key starts as.
    fn new_default_key(&self, namespace: Namespace) -> KeyRecord {
        let now = self.clock.now();
        let backend = self.backends.default_for(namespace.as_str()).to_owned();
        let mut key =
            KeyRecord::new(new_key_id(now), namespace, Principal::system().to_string(), backend, KeySpec::Aes256, now);
        key.description = "The namespace's default key, made by Keyward on first use".into();
        key.rotation_period_days = Some(DEFAULT_KEY_ROTATION_DAYS);
        key.next_rotation_at = Some(now + Duration::days(i64::from(DEFAULT_KEY_ROTATION_DAYS)));
        key
    }

    /// Whether the policies would let the caller do the request's operation with `key`
    /// (asked quietly: the request's own decision comes when it uses the key).
    fn could_use(&self, scope: &Scope, key: &KeyRecord) -> Result<bool> {
        self.decide_quietly(scope, Self::encrypting_action(scope.operation), self.key_resource(key)?)
    }

    /// The action an encryption asks about the key it encrypts under.
    fn encrypting_action(op: Operation) -> Action {
        if op == Operation::ReEncrypt { Action::ReEncryptTo } else { Action::Op(op) }
    }

    /// Makes the key's first version and stages the key with its alias.
    async fn stage_default_key(&self, scope: &mut Scope, key: KeyRecord, alias: AliasName) -> Result<()> {
        scope.note_key(key.id, Some(1));
        let backend = self.backends.lookup(&key.backend)?.clone();
        if !backend.capabilities().specs.contains(&KeySpec::Aes256) {
            return Err(Error::new(
                ErrorCode::UnsupportedOperation,
                format!("backend `{}` cannot hold the namespace's default key", key.backend),
            ));
        }
        let material = backend.create_key(key.id, 1, key.spec, key.usage).await.map_err(backend_err)?;
        let version = VersionRecord::new(1, material, key.created_at);
        let permit = Permit::new(Action::Op(Operation::CreateKey), Some(key.id));
        let refused = Error::conflict(format!("alias `{alias}` was just created by another request"));
        let write = Write::InsertKey { key, version, alias: Some(alias), idempotency: None };
        self.stage(scope, permit, write, refused)
    }
}
