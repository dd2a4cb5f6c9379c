//! Key administration: create, describe, list, update, enable/disable, deletion, rotation.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::default_keys::{ensure_caller_managed, ensure_not_reserved};
use super::{KeyService, Scope, backend_err, store_err};
use crate::error::{Detail, Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::approval::PendingRequest;
use crate::model::context::EncryptionContext;
use crate::model::ids::{AliasName, KeyId, KeyRef, Namespace};
use crate::model::import::KeyOrigin;
use crate::model::key::{
    KeyMetadata, KeyRecord, KeySpec, KeyState, KeyUsage, OnUseWhilePending, validate_description, validate_tags,
};
use crate::model::version::{VersionRecord, VersionState};
use crate::operation::{Action, Operation};
use crate::ports::backend::DynBackend as _;
use crate::ports::store::{IdempotencyKey, Write};
use crate::service::backends::Guarded;

/// Deletion waiting period bounds, in days.
pub const MIN_PENDING_DAYS: u32 = 7;
/// Upper bound of the deletion waiting period.
pub const MAX_PENDING_DAYS: u32 = 30;
/// Automatic rotation period bounds, in days.
pub const ROTATION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// CreateKey's input.
#[derive(Debug, Clone)]
pub struct CreateKeyInput {
    /// Where the key lives.
    pub namespace: Namespace,
    /// Free text.
    pub description: String,
    /// The key spec.
    pub spec: KeySpec,
    /// The key usage; the spec's default when absent.
    pub usage: Option<KeyUsage>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// A backend instance; the server's default when absent.
    pub backend: Option<String>,
    /// An alias to create with the key.
    pub alias: Option<AliasName>,
    /// An existing key of an external KMS to link instead of creating material.
    pub external_key_id: Option<String>,
    /// `External`: no material is made; the key waits in `PendingImport` for ImportKeyMaterial.
    pub origin: KeyOrigin,
    /// The `Idempotency-Key` header and a hash of the request.
    pub idempotency: Option<(String, String)>,
}

/// How UpdateKey changes the rotation period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationUpdate {
    /// Leave as is.
    Keep,
    /// Turn automatic rotation off.
    Off,
    /// Rotate every so many days.
    Every(u32),
}

/// How UpdateKey changes tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TagUpdate {
    /// Leave as they are.
    #[default]
    Keep,
    /// Replace all tags.
    Replace(BTreeMap<String, String>),
    /// Set these tags (adding or overwriting) and remove those, keeping the rest (the AWS
    /// TagResource / UntagResource shape, applied to the key as it is when the change lands).
    Change {
        /// Tags to set.
        set: BTreeMap<String, String>,
        /// Tag names to remove.
        remove: Vec<String>,
    },
}

/// UpdateKey's input: absent fields are left as they are.
#[derive(Debug, Clone)]
pub struct UpdateKeyInput {
    /// New description.
    pub description: Option<String>,
    /// Tag change.
    pub tags: TagUpdate,
    /// Rotation period change.
    pub rotation: RotationUpdate,
    /// Change of the encryption count that rotates the key.
    pub rotate_after: RotateAfterUpdate,
    /// Change of what an attempt to use the key while it is pending deletion does.
    pub on_use_while_pending: Option<OnUseWhilePending>,
}

/// How UpdateKey changes `rotate_after_encryptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateAfterUpdate {
    /// Leave as is.
    Keep,
    /// Back to the namespace's or the default.
    Default,
    /// Rotate after this many encryptions with the primary version.
    After(u64),
}

/// ListKeys' output.
#[derive(Debug, Clone)]
pub struct ListKeysOutput {
    /// The page.
    pub keys: Vec<KeyMetadata>,
    /// Cursor for the next page.
    pub next_token: Option<String>,
}

/// One line of ListKeyVersions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// Its state.
    pub state: VersionState,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Encryptions counted.
    pub encryptions: u64,
    /// Decryptions counted.
    pub decryptions: u64,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl KeyService {
    /// CreateKey.
    pub async fn create_key(&self, scope: &mut Scope, input: CreateKeyInput) -> Result<KeyMetadata> {
        validate_description(&input.description)?;
        validate_tags(&input.tags)?;
        if let Some(alias) = &input.alias {
            ensure_not_reserved(alias)?;
        }
        let usage = check_spec_and_usage(input.spec, input.usage, input.external_key_id.is_some())?;
        let principal = scope.principal()?;
        let owner = principal.to_string();
        let backend_name =
            input.backend.clone().unwrap_or_else(|| self.backends.default_for(input.namespace.as_str()).to_owned());
        scope.create = Some((backend_name.clone(), input.external_key_id.is_some()));
        let permit = self.authorize_namespace(scope, Action::Op(Operation::CreateKey), &input.namespace)?;

        let idempotency =
            input.idempotency.map(|(key, request_hash)| IdempotencyKey { principal: owner.clone(), key, request_hash });
        if let Some(idem) = &idempotency
            && let Some(existing) = self.replay(scope, idem).await?
        {
            return Ok(existing);
        }

        let backend = self.backends.lookup(&backend_name)?.clone();
        if input.spec.is_rsa() && usage == KeyUsage::EncryptDecrypt && backend.capabilities().rsa_oaep.is_empty() {
            return Err(Error::new(
                ErrorCode::UnsupportedOperation,
                format!("backend `{backend_name}` has no RSA encryption keys"),
            ));
        }
        if !backend.capabilities().specs.contains(&input.spec) {
            return Err(Error::new(
                ErrorCode::UnsupportedOperation,
                format!("backend `{backend_name}` cannot create `{}` keys", input.spec),
            ));
        }
        let imported = input.origin == KeyOrigin::External;
        if imported {
            check_importable(&backend_name, backend.capabilities(), input.spec, input.external_key_id.is_some())?;
        }
        let now = self.clock.now();
        let id = new_key_id(now);
        scope.note_key(id, Some(1));
        let material = match &input.external_key_id {
            None if imported => Ok(zeroize::Zeroizing::new(Vec::new())),
            None => backend.create_key(id, 1, input.spec, usage).await,
            Some(external) => backend.link_key(id, external).await,
        }
        .map_err(backend_err)?;
        let key = KeyRecord {
            description: input.description,
            tags: input.tags,
            usage,
            origin: input.origin,
            state: if imported { KeyState::PendingImport } else { KeyState::Enabled },
            ..KeyRecord::new(id, input.namespace, owner, backend_name, input.spec, now)
        };
        let version = VersionRecord { destroyed: imported, ..VersionRecord::new(1, material, now) };
        let refused = match &input.alias {
            Some(alias) => {
                Error::conflict(format!("alias `{alias}` already exists, or the idempotency key was just used; retry"))
                    .with_detail(Detail::AlreadyExists)
            }
            None => Error::conflict("the idempotency key was just used by a concurrent request; retry"),
        };
        let metadata = self.metadata_with(key.clone(), input.alias.iter().cloned().collect())?;
        let write = Write::InsertKey { key, version, alias: input.alias, idempotency };
        self.stage(scope, Permit::new(permit.action(), Some(id)), write, refused)?;
        Ok(metadata)
    }

    /// The key a repeated idempotency key created, or `Conflict` if the request differs.
    async fn replay(&self, scope: &mut Scope, idem: &IdempotencyKey) -> Result<Option<KeyMetadata>> {
        let Some((id, hash)) = self.store.idempotent_key(&idem.principal, &idem.key).await.map_err(store_err)? else {
            return Ok(None);
        };
        if hash != idem.request_hash {
            return Err(Error::conflict("the idempotency key was already used with a different request"));
        }
        let key = self
            .store
            .key_current(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found(format!("key `{id}`")))?;
        scope.note_key(id, None);
        self.metadata(key).await.map(Some)
    }

    /// DescribeKey.
    pub async fn describe_key(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyMetadata> {
        let key = self.resolve(scope, key).await?;
        self.authorize_key(scope, Action::Op(Operation::DescribeKey), &key, &EncryptionContext::default())?;
        self.metadata(key).await
    }

    /// ListKeys: one namespace, or every namespace the caller may list.
    pub async fn list_keys(
        &self,
        scope: &mut Scope,
        namespace: Option<Namespace>,
        next_token: Option<&str>,
        limit: u64,
    ) -> Result<ListKeysOutput> {
        let after =
            next_token.map(str::parse::<KeyId>).transpose().map_err(|_| Error::invalid("invalid `next_token`"))?;
        let action = Action::Op(Operation::ListKeys);
        if let Some(ns) = &namespace {
            self.authorize_namespace(scope, action, ns)?;
        } else {
            scope.principal()?;
        }
        // A cross-namespace listing reads on until it has `limit` keys the caller may see, so
        // a cursor only ever names a key the caller was shown (a cursor naming the last row
        // read would reveal other namespaces' key ids one `limit=1` page at a time).
        let mut allowed_ns: BTreeMap<Namespace, bool> = BTreeMap::new();
        let mut keys = Vec::new();
        let mut cursor = after;
        let mut more = false;
        'pages: loop {
            let page = self.store.list_keys(namespace.as_ref(), cursor, limit).await.map_err(store_err)?;
            let full = page.len() as u64 == limit;
            let mut rows = page.into_iter().peekable();
            while let Some(key) = rows.next() {
                cursor = Some(key.id);
                if namespace.is_none() {
                    let allowed = match allowed_ns.get(&key.namespace) {
                        Some(a) => *a,
                        None => {
                            let allowed = self.allows_namespace(scope, action, &key.namespace)?;
                            allowed_ns.insert(key.namespace.clone(), allowed);
                            allowed
                        }
                    };
                    if !allowed {
                        continue;
                    }
                }
                keys.push(self.metadata(key).await?);
                if keys.len() as u64 == limit {
                    more = rows.peek().is_some() || full;
                    break 'pages;
                }
            }
            if !full {
                break;
            }
        }
        let next_token = if more { keys.last().map(|k| k.key.id.to_string()) } else { None };
        Ok(ListKeysOutput { keys, next_token })
    }

    /// UpdateKey.
    pub async fn update_key(&self, scope: &mut Scope, key: &KeyRef, input: UpdateKeyInput) -> Result<KeyMetadata> {
        if let Some(d) = &input.description {
            validate_description(d)?;
        }
        if let TagUpdate::Replace(t) | TagUpdate::Change { set: t, .. } = &input.tags {
            validate_tags(t)?;
        }
        if let RotationUpdate::Every(days) = input.rotation
            && !ROTATION_DAYS.contains(&days)
        {
            return Err(Error::invalid(format!(
                "`rotation_period_days` must be {}-{}",
                ROTATION_DAYS.start(),
                ROTATION_DAYS.end()
            )));
        }
        let mut key = self.resolve(scope, key).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::UpdateKey), &key, &EncryptionContext::default())?;
        ensure_caller_managed(&key, Operation::UpdateKey)?;
        if key.state == KeyState::Destroyed {
            return Err(Error::conflict("the key is destroyed").with_detail(Detail::InvalidState));
        }
        if let RotateAfterUpdate::After(n) = input.rotate_after
            && !super::rotation::ROTATE_AFTER.contains(&n)
        {
            return Err(Error::invalid(format!(
                "`rotate_after_encryptions` must be {}-{}",
                super::rotation::ROTATE_AFTER.start(),
                super::rotation::ROTATE_AFTER.end()
            )));
        }
        if matches!(input.rotation, RotationUpdate::Every(_))
            || matches!(input.rotate_after, RotateAfterUpdate::After(_))
        {
            self.ensure_rotatable(self.backend_for(&permit, &key)?, &key).await?;
        }
        if let Some(response) = input.on_use_while_pending {
            key.on_use_while_pending = response;
        }
        match input.rotate_after {
            RotateAfterUpdate::Keep => {}
            RotateAfterUpdate::Default => key.rotate_after_encryptions = None,
            RotateAfterUpdate::After(n) => key.rotate_after_encryptions = Some(n),
        }
        let now = self.clock.now();
        if let Some(d) = input.description {
            key.description = d;
        }
        match input.tags {
            TagUpdate::Keep => {}
            TagUpdate::Replace(t) => key.tags = t,
            TagUpdate::Change { set, remove } => {
                for name in &remove {
                    key.tags.remove(name);
                }
                key.tags.extend(set);
                validate_tags(&key.tags)?;
            }
        }
        match input.rotation {
            RotationUpdate::Keep => {}
            RotationUpdate::Off => {
                key.rotation_period_days = None;
                key.next_rotation_at = None;
            }
            RotationUpdate::Every(days) => {
                key.rotation_period_days = Some(days);
                key.next_rotation_at = Some(now + Duration::days(i64::from(days)));
            }
        }
        self.save(scope, permit, key).await
    }

    /// EnableKey.
    pub async fn enable_key(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyMetadata> {
        self.set_state(scope, key, Operation::EnableKey, KeyState::Enabled).await
    }

    /// DisableKey.
    pub async fn disable_key(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyMetadata> {
        self.set_state(scope, key, Operation::DisableKey, KeyState::Disabled).await
    }

    async fn set_state(&self, scope: &mut Scope, key: &KeyRef, op: Operation, to: KeyState) -> Result<KeyMetadata> {
        let mut key = self.resolve(scope, key).await?;
        let permit = self.authorize_key(scope, Action::Op(op), &key, &EncryptionContext::default())?;
        ensure_caller_managed(&key, op)?;
        match key.state {
            KeyState::Enabled | KeyState::Disabled => {}
            KeyState::PendingDeletion => {
                return Err(Error::new(
                    ErrorCode::KeyPendingDeletion,
                    "the key is pending deletion; cancel the deletion first",
                ));
            }
            KeyState::Destroyed => {
                return Err(Error::conflict("the key is destroyed").with_detail(Detail::InvalidState));
            }
            KeyState::PendingImport => {
                return Err(
                    Error::conflict("the key has no key material; import it first").with_detail(Detail::InvalidState)
                );
            }
        }
        if key.state == to {
            return self.metadata(key).await;
        }
        let resource = self.key_resource(&key)?;
        if op == Operation::DisableKey
            && let Some(required) = self.approval_gate(scope, op, resource)?
        {
            let request = PendingRequest::DisableKey { key_id: key.id };
            return Err(self.defer(scope, permit, request, resource, required));
        }
        key.state = to;
        self.save(scope, permit, key).await
    }

    /// ScheduleKeyDeletion.
    pub async fn schedule_key_deletion(
        &self,
        scope: &mut Scope,
        key: &KeyRef,
        days: Option<u32>,
    ) -> Result<KeyMetadata> {
        let days = days.unwrap_or(MAX_PENDING_DAYS);
        if !(MIN_PENDING_DAYS..=MAX_PENDING_DAYS).contains(&days) {
            return Err(Error::invalid(format!(
                "`pending_window_days` must be {MIN_PENDING_DAYS}-{MAX_PENDING_DAYS}, got {days}"
            )));
        }
        let mut key = self.resolve(scope, key).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::ScheduleKeyDeletion), &key, &EncryptionContext::default())?;
        ensure_caller_managed(&key, Operation::ScheduleKeyDeletion)?;
        match key.state {
            KeyState::Enabled | KeyState::Disabled | KeyState::PendingImport => {}
            KeyState::PendingDeletion => {
                return Err(Error::conflict("the key is already pending deletion").with_detail(Detail::InvalidState));
            }
            KeyState::Destroyed => {
                return Err(Error::conflict("the key is destroyed").with_detail(Detail::InvalidState));
            }
        }
        let resource = self.key_resource(&key)?;
        if let Some(required) = self.approval_gate(scope, Operation::ScheduleKeyDeletion, resource)? {
            let request = PendingRequest::ScheduleKeyDeletion { key_id: key.id, pending_window_days: Some(days) };
            return Err(self.defer(scope, permit, request, resource, required));
        }
        let now = self.clock.now();
        key.state = KeyState::PendingDeletion;
        key.deletion_date = Some(now + Duration::days(i64::from(days)));
        self.save(scope, permit, key).await
    }

    /// CancelKeyDeletion: the key comes back `Disabled`.
    pub async fn cancel_key_deletion(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyMetadata> {
        let key = self.resolve(scope, key).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::CancelKeyDeletion), &key, &EncryptionContext::default())?;
        self.cancel_deletion(scope, permit, key).await
    }

    /// Stages a key's return from `PendingDeletion`: `Disabled`, or `PendingImport` without material.
    pub(super) async fn cancel_deletion(
        &self,
        scope: &mut Scope,
        permit: Permit,
        mut key: KeyRecord,
    ) -> Result<KeyMetadata> {
        if key.state != KeyState::PendingDeletion {
            return Err(Error::conflict(format!("the key is `{}`, not pending deletion", key.state.as_str()))
                .with_detail(Detail::InvalidState));
        }
        // A key without material (imported, then deleted or never imported) still has none.
        let material = self.store.version(key.id, key.primary_version).await.map_err(store_err)?;
        key.state = if material.is_none_or(|v| v.destroyed) { KeyState::PendingImport } else { KeyState::Disabled };
        key.deletion_date = None;
        self.save(scope, permit, key).await
    }

    /// RotateKey: adds a version and makes it primary.
    pub async fn rotate_key(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyMetadata> {
        let key = self.resolve(scope, key).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::RotateKey), &key, &EncryptionContext::default())?;
        key.ensure_usable(self.clock.now())?;
        self.rotate(scope, permit, key).await
    }

    pub(super) async fn rotate(&self, scope: &mut Scope, permit: Permit, mut key: KeyRecord) -> Result<KeyMetadata> {
        let backend = self.backend_for(&permit, &key)?.clone();
        self.ensure_rotatable(&backend, &key).await?;
        let now = self.clock.now();
        let version = key.primary_version.checked_add(1).ok_or_else(|| Error::conflict("no more versions"))?;
        let material = backend.create_key(key.id, version, key.spec, key.usage).await.map_err(backend_err)?;
        key.primary_version = version;
        if let Some(days) = key.rotation_period_days {
            key.next_rotation_at = Some(now + Duration::days(i64::from(days)));
        }
        key.updated_at = now;
        key.revision += 1;
        scope.note_key(key.id, Some(version));
        let record = VersionRecord::new(version, material, now);
        let metadata = self.metadata(key.clone()).await?;
        self.stage(scope, permit, Write::AddVersion(key, record), changed_concurrently())?;
        Ok(metadata)
    }

    /// Refuses rotation of a key whose backend rotates it elsewhere (a linked external key),
    /// and of signing, MAC and RSA keys (see [`KeySpec::rotates`]).
    pub(super) async fn ensure_rotatable(&self, backend: &Guarded, key: &KeyRecord) -> Result<()> {
        if !key.spec.rotates() {
            return Err(Error::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "{} keys do not rotate (a signature or MAC names no version); create a new key and move \
                     callers to it with an alias",
                    key.spec
                ),
            ));
        }
        if key.origin == KeyOrigin::External {
            return Err(Error::new(
                ErrorCode::UnsupportedOperation,
                "keys with imported material do not rotate; create a new key, import new material and move callers \
                 to it with an alias",
            ));
        }
        let current = self
            .store
            .version(key.id, key.primary_version)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::internal(format!("primary version of {} missing", key.id)))?;
        let handle = crate::ports::backend::VersionHandle {
            key_id: key.id,
            version: current.version,
            material: &current.material,
        };
        backend.can_rotate(handle).map_err(backend_err)
    }

    /// ListKeyVersions.
    pub async fn list_key_versions(&self, scope: &mut Scope, key: &KeyRef) -> Result<Vec<VersionInfo>> {
        let key = self.resolve(scope, key).await?;
        self.authorize_key(scope, Action::Op(Operation::ListKeyVersions), &key, &EncryptionContext::default())?;
        let versions = self.store.versions(key.id).await.map_err(store_err)?;
        Ok(versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                state: if v.destroyed {
                    VersionState::Destroyed
                } else if v.version < key.min_decryption_version {
                    VersionState::Retired
                } else {
                    VersionState::Enabled
                },
                created_at: v.created_at,
                encryptions: v.encryptions,
                decryptions: v.decryptions,
                last_used_at: v.last_used_at,
            })
            .collect())
    }

    /// SetMinDecryptionVersion: versions below it stop decrypting (kept, not destroyed).
    pub async fn set_min_decryption_version(
        &self,
        scope: &mut Scope,
        key: &KeyRef,
        version: u32,
    ) -> Result<KeyMetadata> {
        let mut key = self.resolve(scope, key).await?;
        let permit = self.authorize_key(
            scope,
            Action::Op(Operation::SetMinDecryptionVersion),
            &key,
            &EncryptionContext::default(),
        )?;
        ensure_caller_managed(&key, Operation::SetMinDecryptionVersion)?;
        if version == 0 || version > key.primary_version {
            return Err(Error::invalid(format!(
                "`version` must be 1-{} (the primary version), got {version}",
                key.primary_version
            )));
        }
        if key.state == KeyState::Destroyed {
            return Err(Error::conflict("the key is destroyed").with_detail(Detail::InvalidState));
        }
        key.min_decryption_version = version;
        self.save(scope, permit, key).await
    }

    /// Stages a changed key (revision-checked) and answers its metadata.
    async fn save(&self, scope: &mut Scope, permit: Permit, mut key: KeyRecord) -> Result<KeyMetadata> {
        key.updated_at = self.clock.now();
        key.revision += 1;
        let metadata = self.metadata(key.clone()).await?;
        self.stage(scope, permit, Write::UpdateKey(key), changed_concurrently())?;
        Ok(metadata)
    }
}

/// The answer to a write whose key changed between the decision and the commit.
pub(super) fn changed_concurrently() -> Error {
    Error::conflict("the key changed concurrently; retry")
}

/// Refuses an `EXTERNAL` key its backend could not import material for.
fn check_importable(
    backend_name: &str,
    capabilities: &crate::ports::backend::Capabilities,
    spec: KeySpec,
    linked: bool,
) -> Result<()> {
    if linked {
        return Err(Error::invalid("a key is either linked to an external key or imported, not both"));
    }
    if capabilities.import.is_empty() {
        return Err(Error::new(
            ErrorCode::UnsupportedOperation,
            format!("backend `{backend_name}` does not take imported key material"),
        ));
    }
    if !capabilities.import_specs.contains(&spec) {
        return Err(Error::new(
            ErrorCode::UnsupportedOperation,
            format!("backend `{backend_name}` cannot import `{spec}` key material"),
        ));
    }
    Ok(())
}

/// A time-ordered key id (UUID v7) from the clock port.
pub(super) fn new_key_id(now: DateTime<Utc>) -> KeyId {
    let secs = u64::try_from(now.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, now.timestamp_subsec_nanos());
    KeyId(Uuid::new_v7(ts))
}

/// The usage a new key gets: the one asked for if its spec allows it, else the spec's own.
fn check_spec_and_usage(spec: KeySpec, usage: Option<KeyUsage>, linked: bool) -> Result<KeyUsage> {
    let usage = usage.unwrap_or(spec.usage());
    if !spec.allows(usage) {
        return Err(Error::invalid(format!("a {spec} key cannot have usage {usage}")));
    }
    if linked && spec != KeySpec::Aes256 {
        return Err(Error::new(ErrorCode::UnsupportedOperation, "only AES_256 keys link an existing external key"));
    }
    Ok(usage)
}
