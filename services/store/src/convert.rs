//! Rows to domain values and back. A row that does not convert is reported, never guessed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use keyward_core::model::ids::{AliasName, KeyId, Namespace};
use keyward_core::model::import::KeyOrigin;
use keyward_core::model::key::{KeyRecord, KeySpec, KeyState, KeyUsage, OnUseWhilePending};
use keyward_core::model::version::VersionRecord;
use keyward_core::ports::store::{AliasRecord, StoreError};
use sea_orm::ActiveValue::{NotSet, Set};
use zeroize::Zeroizing;

use crate::entity::{alias, key, key_version};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is invalid: {detail}"))
}

/// Unix microseconds.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn time(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| corrupt("time", us))
}

fn u32_of(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

pub(crate) fn key_id(s: &str) -> Result<KeyId, StoreError> {
    s.parse().map_err(|_| corrupt("key id", s))
}

pub(crate) fn key_from_row(m: key::Model) -> Result<KeyRecord, StoreError> {
    let spec = m.spec.parse::<KeySpec>().map_err(|_| corrupt("spec", &m.spec))?;
    Ok(KeyRecord {
        id: key_id(&m.id)?,
        namespace: Namespace::parse(&m.namespace).map_err(|_| corrupt("namespace", &m.namespace))?,
        description: m.description,
        owner: m.owner,
        tags: serde_json::from_str::<BTreeMap<String, String>>(&m.tags).map_err(|e| corrupt("tags", e))?,
        spec,
        usage: match &m.key_usage {
            Some(u) => u.parse::<KeyUsage>().map_err(|_| corrupt("key usage", u))?,
            None => spec.usage(),
        },
        state: KeyState::parse(&m.state).ok_or_else(|| corrupt("state", &m.state))?,
        backend: m.backend,
        primary_version: u32_of(m.primary_version, "primary version")?,
        min_decryption_version: u32_of(m.min_decryption_version, "min decryption version")?,
        rotation_period_days: m.rotation_period_days.map(|d| u32_of(d, "rotation period")).transpose()?,
        next_rotation_at: m.next_rotation_at.map(time).transpose()?,
        deletion_date: m.deletion_date.map(time).transpose()?,
        created_at: time(m.created_at)?,
        updated_at: time(m.updated_at)?,
        revision: m.revision,
        origin: match &m.origin {
            Some(o) => o.parse::<KeyOrigin>().map_err(|_| corrupt("origin", o))?,
            None => KeyOrigin::Keyward,
        },
        valid_to: m.valid_to.map(time).transpose()?,
        material_fingerprint: m.material_fingerprint,
        rotate_after_encryptions: m.rotate_after_encryptions.and_then(|n| u64::try_from(n).ok()),
        on_use_while_pending: match &m.on_use_while_pending {
            Some(o) => o.parse::<OnUseWhilePending>().map_err(|_| corrupt("on_use_while_pending", o))?,
            None => OnUseWhilePending::Alert,
        },
        deletion_canary_count: u64::try_from(m.deletion_canary_count).unwrap_or(0),
        deletion_canary_last_at: m.deletion_canary_last_at.map(time).transpose()?,
    })
}

pub(crate) fn key_to_active(k: &KeyRecord) -> key::ActiveModel {
    key::ActiveModel {
        id: Set(k.id.to_string()),
        namespace: Set(k.namespace.to_string()),
        description: Set(k.description.clone()),
        owner: Set(k.owner.clone()),
        tags: Set(serde_json::to_string(&k.tags).unwrap_or_else(|_| "{}".into())),
        spec: Set(k.spec.as_str().to_owned()),
        key_usage: Set(Some(k.usage.as_str().to_owned())),
        state: Set(k.state.as_str().to_owned()),
        backend: Set(k.backend.clone()),
        primary_version: Set(i64::from(k.primary_version)),
        min_decryption_version: Set(i64::from(k.min_decryption_version)),
        rotation_period_days: Set(k.rotation_period_days.map(i64::from)),
        next_rotation_at: Set(k.next_rotation_at.map(micros)),
        deletion_date: Set(k.deletion_date.map(micros)),
        created_at: Set(micros(k.created_at)),
        updated_at: Set(micros(k.updated_at)),
        revision: Set(k.revision),
        origin: Set(Some(k.origin.as_str().to_owned())),
        valid_to: Set(k.valid_to.map(micros)),
        material_fingerprint: Set(k.material_fingerprint.clone()),
        rotate_after_encryptions: Set(k.rotate_after_encryptions.and_then(|n| i64::try_from(n).ok())),
        on_use_while_pending: Set(Some(k.on_use_while_pending.as_str().to_owned())),
        // The canary's counters change only by its own write (see `Write::NoteDeletionCanary`),
        // so an update racing a canary cannot lose a count.
        deletion_canary_count: NotSet,
        deletion_canary_last_at: NotSet,
    }
}

pub(crate) fn version_from_row(m: key_version::Model) -> Result<VersionRecord, StoreError> {
    Ok(VersionRecord {
        version: u32_of(m.version, "version")?,
        material: Zeroizing::new(m.material),
        destroyed: m.destroyed,
        created_at: time(m.created_at)?,
        encryptions: u64::try_from(m.encryptions).unwrap_or(0),
        decryptions: u64::try_from(m.decryptions).unwrap_or(0),
        last_used_at: m.last_used_at.map(time).transpose()?,
    })
}

pub(crate) fn version_to_active(id: KeyId, v: &VersionRecord) -> key_version::ActiveModel {
    key_version::ActiveModel {
        key_id: Set(id.to_string()),
        version: Set(i64::from(v.version)),
        material: Set(v.material.to_vec()),
        destroyed: Set(v.destroyed),
        created_at: Set(micros(v.created_at)),
        encryptions: Set(i64::try_from(v.encryptions).unwrap_or(i64::MAX)),
        decryptions: Set(i64::try_from(v.decryptions).unwrap_or(i64::MAX)),
        last_used_at: Set(v.last_used_at.map(micros)),
    }
}

pub(crate) fn alias_from_row(m: alias::Model) -> Result<AliasRecord, StoreError> {
    Ok(AliasRecord {
        name: AliasName::parse(&m.name).map_err(|_| corrupt("alias", &m.name))?,
        key_id: key_id(&m.key_id)?,
        updated_at: time(m.updated_at)?,
    })
}
