//! A model of the key lifecycle for model-based tests: random sequences of every lifecycle
//! operation run against a service and against this small reference model, and every answer
//! and every audit record is checked against what the model says. Runs on any store: the
//! in-memory ports here, SQLite and Postgres in the end-to-end suite.

use std::collections::BTreeMap;

use chrono::Duration;
use proptest::prelude::*;
use zeroize::Zeroizing;

use crate::error::ErrorCode;
use crate::model::ids::{KeyId, KeyRef, Namespace};
use crate::model::key::KeyState;
use crate::model::principal::{Principal, PrincipalKind};
use crate::operation::Operation;
use crate::ports::audit::AuditRecord;
use crate::ports::clock::ManualClock;
use crate::service::{CreateKeyInput, DecryptInput, EncryptInput, KeyService, RequestMeta, RequestStart};

/// Most keys a sequence creates.
const KEYS: usize = 3;

/// One step. Key and blob indexes wrap around what exists so far.
#[derive(Debug, Clone)]
pub enum Step {
    /// CreateKey.
    Create,
    /// DisableKey.
    Disable(usize),
    /// EnableKey.
    Enable(usize),
    /// RotateKey.
    Rotate(usize),
    /// SetMinDecryptionVersion to a version (0 and past the primary are refused).
    SetMin(usize, u32),
    /// ScheduleKeyDeletion with a window in days (outside 7-30 is refused).
    Schedule(usize, u32),
    /// CancelKeyDeletion.
    Cancel(usize),
    /// The clock moves on by days, then a maintenance pass runs.
    Advance(u32),
    /// Encrypt.
    Encrypt(usize),
    /// Decrypt an earlier blob.
    Decrypt(usize),
}

/// Sequences of steps.
pub fn steps(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        2 => Just(Step::Create),
        2 => any::<usize>().prop_map(Step::Disable),
        2 => any::<usize>().prop_map(Step::Enable),
        2 => any::<usize>().prop_map(Step::Rotate),
        1 => (any::<usize>(), 0u32..5).prop_map(|(k, v)| Step::SetMin(k, v)),
        1 => (any::<usize>(), 5u32..32).prop_map(|(k, d)| Step::Schedule(k, d)),
        1 => any::<usize>().prop_map(Step::Cancel),
        1 => (0u32..40).prop_map(Step::Advance),
        3 => any::<usize>().prop_map(Step::Encrypt),
        3 => any::<usize>().prop_map(Step::Decrypt),
    ];
    proptest::collection::vec(step, len)
}

#[derive(Debug, Clone)]
struct ModelKey {
    id: KeyId,
    state: KeyState,
    primary: u32,
    min: u32,
    deletion_day: Option<i64>,
}

/// An expected answer: success, or an error code.
type Expect = Result<(), ErrorCode>;

fn usable(k: &ModelKey) -> Expect {
    match k.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled | KeyState::Destroyed => Err(ErrorCode::KeyDisabled),
        KeyState::PendingDeletion => Err(ErrorCode::KeyPendingDeletion),
        KeyState::PendingImport => Err(ErrorCode::Conflict),
    }
}

/// Where a run reads the records its requests left.
#[async_trait::async_trait]
pub trait Trail: Send + Sync {
    /// The records committed since the last call.
    async fn new_records(&self) -> Vec<AuditRecord>;
}

/// Drives a service through `steps` beside the model.
pub struct Run<'a> {
    service: &'a KeyService,
    clock: &'a ManualClock,
    trail: &'a dyn Trail,
    keys: Vec<ModelKey>,
    blobs: Vec<(usize, u32, Vec<u8>, Vec<u8>)>,
    day: i64,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("keys", &self.keys).field("day", &self.day).finish_non_exhaustive()
    }
}

impl<'a> Run<'a> {
    /// A run on a service whose clock is `clock`; `trail` has been read up to now.
    pub fn new(service: &'a KeyService, clock: &'a ManualClock, trail: &'a dyn Trail) -> Self {
        Self { service, clock, trail, keys: Vec::new(), blobs: Vec::new(), day: 0 }
    }

    fn start(op: Operation) -> RequestStart {
        // An administrator under the default policies.
        let admin = Principal { kind: PrincipalKind::User, id: "model".into(), groups: vec!["admins".into()] };
        RequestStart {
            meta: RequestMeta { request_id: uuid::Uuid::new_v4().to_string(), ..RequestMeta::default() },
            principal: Ok(admin),
            operation: op,
        }
    }

    /// Runs every step; the first disagreement with the model is the error.
    pub async fn steps(&mut self, steps: &[Step]) -> Result<(), String> {
        for (n, step) in steps.iter().enumerate() {
            self.step(step).await.map_err(|e| format!("step {n} {step:?}: {e}"))?;
        }
        Ok(())
    }

    /// Checks an answer and the one record the request left.
    async fn check<T: Send + Sync>(
        &mut self,
        op: Operation,
        id: &str,
        key: Option<KeyId>,
        got: &crate::Result<T>,
        want: Expect,
    ) -> Result<(), String> {
        let got_code = got.as_ref().map(|_| ()).map_err(crate::Error::code);
        if got_code != want {
            let detail = got.as_ref().err().map(|e| e.message().to_owned()).unwrap_or_default();
            return Err(format!("answered {got_code:?} ({detail}), the model says {want:?}"));
        }
        let records = self.trail.new_records().await;
        // A use of a key pending deletion also raises its canary: a second record, after the refusal.
        let (record, canary) = match records.as_slice() {
            [record] => (record, None),
            [record, canary] => (record, Some(canary)),
            _ => return Err(format!("{} records appeared, not one", records.len())),
        };
        let canary_expected = want == Err(ErrorCode::KeyPendingDeletion) && op.uses_key_material();
        match canary {
            None if canary_expected => return Err("no deletion canary was recorded".into()),
            Some(c) if !canary_expected => return Err(format!("an unexpected second record: {}", c.action)),
            Some(c) if c.action != "DeletionCanary" || c.request_id != id || c.key_id != key => {
                return Err(format!("the second record is not this attempt's canary: {c:?}"));
            }
            _ => {}
        }
        let outcome = want.map_or_else(|c| c.as_str().to_owned(), |()| "Success".to_owned());
        if record.request_id != id || record.action != op.as_str() || record.outcome != outcome {
            return Err(format!(
                "recorded {} {} {}, expected {id} {} {outcome}",
                record.request_id,
                record.action,
                record.outcome,
                op.as_str()
            ));
        }
        if record.key_id != key {
            return Err(format!("the record names key {:?}, not {key:?}", record.key_id));
        }
        Ok(())
    }

    fn key(&self, i: usize) -> Option<(usize, ModelKey)> {
        if self.keys.is_empty() {
            return None;
        }
        let i = i % self.keys.len();
        Some((i, self.keys[i].clone()))
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let svc = self.service;
        match *step {
            Step::Create => {
                if self.keys.len() >= KEYS {
                    return Ok(());
                }
                let start = Self::start(Operation::CreateKey);
                let id = start.meta.request_id.clone();
                let input = CreateKeyInput {
                    namespace: Namespace::parse("model").map_err(|e| e.to_string())?,
                    description: String::new(),
                    spec: crate::model::key::KeySpec::Aes256,
                    usage: None,
                    tags: BTreeMap::new(),
                    backend: None,
                    alias: None,
                    external_key_id: None,
                    origin: crate::model::import::KeyOrigin::Keyward,
                    idempotency: None,
                };
                let got = svc.audited(start, async |s| svc.create_key(s, input).await).await;
                let key_id = got.as_ref().ok().map(|m| m.key.id);
                self.check(Operation::CreateKey, &id, key_id, &got, Ok(())).await?;
                let m = got.map_err(|e| e.to_string())?;
                self.keys.push(ModelKey {
                    id: m.key.id,
                    state: KeyState::Enabled,
                    primary: 1,
                    min: 1,
                    deletion_day: None,
                });
            }
            Step::Disable(i) | Step::Enable(i) => {
                let Some((i, k)) = self.key(i) else { return Ok(()) };
                let (op, to) = match step {
                    Step::Disable(_) => (Operation::DisableKey, KeyState::Disabled),
                    _ => (Operation::EnableKey, KeyState::Enabled),
                };
                let want = match k.state {
                    KeyState::Enabled | KeyState::Disabled => Ok(()),
                    KeyState::PendingDeletion => Err(ErrorCode::KeyPendingDeletion),
                    KeyState::Destroyed | KeyState::PendingImport => Err(ErrorCode::Conflict),
                };
                let start = Self::start(op);
                let id = start.meta.request_id.clone();
                let r = KeyRef::Id(k.id);
                let got = if to == KeyState::Disabled {
                    svc.audited(start, async |s| svc.disable_key(s, &r).await).await
                } else {
                    svc.audited(start, async |s| svc.enable_key(s, &r).await).await
                };
                self.check(op, &id, Some(k.id), &got, want).await?;
                if want.is_ok() {
                    self.keys[i].state = to;
                }
            }
            Step::Rotate(i) => {
                let Some((i, k)) = self.key(i) else { return Ok(()) };
                let start = Self::start(Operation::RotateKey);
                let id = start.meta.request_id.clone();
                let r = KeyRef::Id(k.id);
                let got = svc.audited(start, async |s| svc.rotate_key(s, &r).await).await;
                let want = usable(&k);
                self.check(Operation::RotateKey, &id, Some(k.id), &got, want).await?;
                if want.is_ok() {
                    self.keys[i].primary += 1;
                    let primary = got.map_err(|e| e.to_string())?.key.primary_version;
                    if primary != self.keys[i].primary {
                        return Err(format!("primary version {primary}, the model says {}", self.keys[i].primary));
                    }
                }
            }
            Step::SetMin(i, v) => {
                let Some((i, k)) = self.key(i) else { return Ok(()) };
                let start = Self::start(Operation::SetMinDecryptionVersion);
                let id = start.meta.request_id.clone();
                let r = KeyRef::Id(k.id);
                let got = svc.audited(start, async |s| svc.set_min_decryption_version(s, &r, v).await).await;
                let want = if v == 0 || v > k.primary {
                    Err(ErrorCode::InvalidRequest)
                } else if k.state == KeyState::Destroyed {
                    Err(ErrorCode::Conflict)
                } else {
                    Ok(())
                };
                self.check(Operation::SetMinDecryptionVersion, &id, Some(k.id), &got, want).await?;
                if want.is_ok() {
                    self.keys[i].min = v;
                }
            }
            Step::Schedule(i, days) => {
                let Some((i, k)) = self.key(i) else { return Ok(()) };
                let start = Self::start(Operation::ScheduleKeyDeletion);
                let id = start.meta.request_id.clone();
                let r = KeyRef::Id(k.id);
                let got = svc.audited(start, async |s| svc.schedule_key_deletion(s, &r, Some(days)).await).await;
                let want = if !(7..=30).contains(&days) {
                    Err(ErrorCode::InvalidRequest)
                } else {
                    match k.state {
                        KeyState::Enabled | KeyState::Disabled | KeyState::PendingImport => Ok(()),
                        KeyState::PendingDeletion | KeyState::Destroyed => Err(ErrorCode::Conflict),
                    }
                };
                // An invalid window is refused before the key is even looked up.
                let key = (7..=30).contains(&days);
                self.check(Operation::ScheduleKeyDeletion, &id, key.then_some(k.id), &got, want).await?;
                if want.is_ok() {
                    self.keys[i].state = KeyState::PendingDeletion;
                    self.keys[i].deletion_day = Some(self.day + i64::from(days));
                }
            }
            Step::Cancel(i) => {
                let Some((i, k)) = self.key(i) else { return Ok(()) };
                let start = Self::start(Operation::CancelKeyDeletion);
                let id = start.meta.request_id.clone();
                let r = KeyRef::Id(k.id);
                let got = svc.audited(start, async |s| svc.cancel_key_deletion(s, &r).await).await;
                let want = if k.state == KeyState::PendingDeletion { Ok(()) } else { Err(ErrorCode::Conflict) };
                self.check(Operation::CancelKeyDeletion, &id, Some(k.id), &got, want).await?;
                if want.is_ok() {
                    self.keys[i].state = KeyState::Disabled;
                    self.keys[i].deletion_day = None;
                }
            }
            Step::Advance(days) => {
                self.day += i64::from(days);
                self.clock.advance(Duration::days(i64::from(days)));
                let report = svc.run_maintenance().await.map_err(|e| e.to_string())?;
                let mut due = 0;
                for k in &mut self.keys {
                    if k.state == KeyState::PendingDeletion && k.deletion_day.is_some_and(|d| d <= self.day) {
                        k.state = KeyState::Destroyed;
                        due += 1;
                    }
                }
                if (report.destroyed, report.rotated, report.failed) != (due, 0, 0) {
                    return Err(format!("maintenance did {report:?}, the model destroys {due}"));
                }
                // Each destruction: the state change, then the material, each recorded as the
                // system's DestroyKey.
                let records = self.trail.new_records().await;
                let destroys = records.iter().filter(|r| r.action == "DestroyKey" && r.outcome == "Success").count();
                if records.len() != 2 * due || destroys != 2 * due {
                    return Err(format!("{} maintenance records for {due} destructions", records.len()));
                }
            }
            Step::Encrypt(i) => {
                let Some((slot, k)) = self.key(i) else { return Ok(()) };
                let start = Self::start(Operation::Encrypt);
                let id = start.meta.request_id.clone();
                let plaintext = format!("blob {} under {}", self.blobs.len(), k.id).into_bytes();
                let input = EncryptInput {
                    key: KeyRef::Id(k.id),
                    plaintext: Zeroizing::new(plaintext.clone()),
                    context: Default::default(),
                };
                let got = svc.audited(start, async |s| svc.encrypt(s, input).await).await;
                let want = usable(&k);
                self.check(Operation::Encrypt, &id, Some(k.id), &got, want).await?;
                if let Ok(out) = got {
                    if out.key_version != k.primary {
                        return Err(format!(
                            "encrypted under version {}, the primary is {}",
                            out.key_version, k.primary
                        ));
                    }
                    self.blobs.push((slot, out.key_version, out.ciphertext_blob, plaintext));
                }
            }
            Step::Decrypt(b) => {
                if self.blobs.is_empty() {
                    return Ok(());
                }
                let (slot, version, blob, plaintext) = self.blobs[b % self.blobs.len()].clone();
                let k = self.keys[slot].clone();
                let start = Self::start(Operation::Decrypt);
                let id = start.meta.request_id.clone();
                let input = DecryptInput { ciphertext_blob: blob, context: Default::default(), key: None };
                let got = svc.audited(start, async |s| svc.decrypt(s, input).await).await;
                let want = usable(&k).and(if version < k.min { Err(ErrorCode::InvalidCiphertext) } else { Ok(()) });
                self.check(Operation::Decrypt, &id, Some(k.id), &got, want).await?;
                if let Ok(out) = got
                    && (out.plaintext.as_slice() != plaintext.as_slice() || out.key_version != version)
                {
                    return Err("decrypted to something else".into());
                }
            }
        }
        Ok(())
    }
}
