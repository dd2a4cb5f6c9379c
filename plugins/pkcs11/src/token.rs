//! The connection to one token: the module loaded and initialised once per process, the slot
//! found by label, one login, and a pool of sessions. A session error that means the token is
//! gone drops the connection; [`Token::reconnect`] rebuilds it (re-initialising the module, so
//! a token that came back is found again).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use keyward_backend::BackendError;
use zeroize::Zeroizing;

/// Modules loaded in this process, by path: PKCS#11 allows one initialisation per module.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn load_module(path: &Path, fresh: bool) -> Result<Pkcs11, BackendError> {
    let mut loaded = modules().lock().map_err(|_| BackendError::Internal("module registry poisoned".into()))?;
    if fresh && let Some(old) = loaded.remove(path) {
        // Finalizing makes the module forget its slots, so a token that returned is seen again.
        let _ = old.finalize();
    }
    if let Some(ctx) = loaded.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path)
        .map_err(|e| BackendError::Unavailable(format!("cannot load PKCS#11 module `{}`: {e}", path.display())))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(BackendError::Unavailable(format!("C_Initialize: {e}"))),
    }
    loaded.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// An open connection.
struct Conn {
    ctx: Pkcs11,
    slot: Slot,
    idle: Vec<Session>,
}

/// One token, shared by the backend's calls.
pub(crate) struct Token {
    module: PathBuf,
    label: String,
    pin: Zeroizing<String>,
    conn: Mutex<Option<Conn>>,
    /// Object handles by CKA_ID; valid only for the current connection.
    handles: Mutex<HashMap<Vec<u8>, ObjectHandle>>,
    permits: tokio::sync::Semaphore,
    /// Run calls on the caller's thread (a module that answers in microseconds, such as
    /// SoftHSM2) instead of handing them to a blocking thread (a network HSM).
    inline: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("module", &self.module).field("label", &self.label).finish_non_exhaustive()
    }
}

/// Whether a PKCS#11 error means the token or session is gone (rather than a bad request).
pub(crate) fn is_connection_error(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::SlotIdInvalid,
            _
        )
    )
}

/// What a token operation returns: a PKCS#11 error keeps its kind for the caller to map.
pub(crate) type OpResult<T> = Result<T, OpError>;

/// Why a token operation failed.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A PKCS#11 call failed.
    Ck(CkError),
    /// Already mapped.
    Backend(BackendError),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        Self::Ck(e)
    }
}

impl From<BackendError> for OpError {
    fn from(e: BackendError) -> Self {
        Self::Backend(e)
    }
}

/// A session checked out of the pool, with the connection's handle cache.
pub(crate) struct Lease<'a> {
    pub(crate) session: Session,
    handles: &'a Mutex<HashMap<Vec<u8>, ObjectHandle>>,
    ctx: Pkcs11,
    slot: Slot,
    label: &'a str,
}

impl Lease<'_> {
    /// The token object with this CKA_ID, from the cache or a search.
    pub(crate) fn find(&self, id: &[u8]) -> OpResult<Option<ObjectHandle>> {
        self.find_class(id, cryptoki::object::ObjectClass::SECRET_KEY)
    }

    /// The token object of a class with this CKA_ID (a key pair's halves share theirs).
    pub(crate) fn find_class(&self, id: &[u8], class: cryptoki::object::ObjectClass) -> OpResult<Option<ObjectHandle>> {
        let cache_key = Self::cache_key(id, class);
        if let Some(h) = self.handles.lock().ok().and_then(|m| m.get(&cache_key).copied()) {
            return Ok(Some(h));
        }
        use cryptoki::object::Attribute;
        let found = self.session.find_objects(&[
            Attribute::Class(class),
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
        ])?;
        let handle = found.first().copied();
        if let (Some(h), Ok(mut m)) = (handle, self.handles.lock()) {
            m.insert(cache_key, h);
        }
        Ok(handle)
    }

    /// Secret keys are cached by their id, the halves of a key pair by id and class.
    fn cache_key(id: &[u8], class: cryptoki::object::ObjectClass) -> Vec<u8> {
        use cryptoki::object::ObjectClass;
        let mut key = id.to_vec();
        if class == ObjectClass::PRIVATE_KEY {
            key.push(b'p');
        } else if class == ObjectClass::PUBLIC_KEY {
            key.push(b'u');
        }
        key
    }

    /// Whether the token we connected to is still there: it answers with its label and still
    /// holds objects. A key that cannot be found on a token that is not there is unavailable,
    /// not missing.
    pub(crate) fn token_present(&self) -> bool {
        use cryptoki::object::{Attribute, ObjectClass};
        let labelled = self.ctx.get_token_info(self.slot).is_ok_and(|i| i.label().trim_end() == self.label);
        labelled
            && self
                .session
                .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Token(true)])
                .is_ok_and(|objects| !objects.is_empty())
    }

    /// Whether the token still answers with its label (a token whose store went away does not).
    pub(crate) fn token_labelled(&self) -> bool {
        self.ctx.get_token_info(self.slot).is_ok_and(|i| i.label().trim_end() == self.label)
    }

    /// Forgets a cached handle (after the object was destroyed), of every class.
    pub(crate) fn forget(&self, id: &[u8]) {
        use cryptoki::object::ObjectClass;
        if let Ok(mut m) = self.handles.lock() {
            for class in [ObjectClass::SECRET_KEY, ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                m.remove(&Self::cache_key(id, class));
            }
        }
    }
}

impl Token {
    /// Connects: loads the module, finds the token, logs in.
    pub(crate) fn open(
        module: PathBuf,
        label: String,
        pin: Zeroizing<String>,
        sessions: usize,
        inline: bool,
    ) -> Result<Self, String> {
        let token = Self {
            module,
            label,
            pin,
            conn: Mutex::new(None),
            handles: Mutex::new(HashMap::new()),
            permits: tokio::sync::Semaphore::new(sessions),
            inline,
        };
        match token.connect(false) {
            Ok(()) => {}
            // An absent token (or module) must not keep the server, and every key on other
            // backends, from starting: this instance starts down and the probe reconnects it.
            // A refused PIN is a configuration error and does stop the start.
            Err(BackendError::Unavailable(reason)) => {
                tracing::error!(token = %token.label, %reason, "token unavailable at start: its keys answer 503 until it is back");
                return Ok(token);
            }
            Err(e) => return Err(e.to_string()),
        }
        // The pool never holds more read-write sessions than the token allows.
        let limit = token.conn.lock().ok().and_then(|c| {
            let c = c.as_ref()?;
            match c.ctx.get_token_info(c.slot).ok()?.max_rw_session_count() {
                cryptoki::slot::Limit::Max(n) => usize::try_from(n).ok(),
                _ => None,
            }
        });
        if let Some(limit) = limit.filter(|l| *l > 0 && *l < sessions) {
            token.permits.forget_permits(sessions - limit);
            tracing::info!(token = %token.label, sessions = limit, "session pool sized to the token's limit");
        }
        Ok(token)
    }

    /// The mechanisms the token offers (empty while it is unreachable).
    pub(crate) fn mechanisms(&self) -> Vec<cryptoki::mechanism::MechanismType> {
        self.conn
            .lock()
            .ok()
            .and_then(|c| {
                let c = c.as_ref()?;
                c.ctx.get_mechanism_list(c.slot).ok()
            })
            .unwrap_or_default()
    }

    /// Whether a connection to the token is open.
    pub(crate) fn is_connected(&self) -> bool {
        self.conn.lock().is_ok_and(|c| c.is_some())
    }

    /// Drops the connection and builds a new one, re-initialising the module so it looks for
    /// the token afresh.
    pub(crate) fn reconnect(&self) -> Result<(), BackendError> {
        self.connect(true)
    }

    fn connect(&self, fresh: bool) -> Result<(), BackendError> {
        let mut guard = self.conn.lock().map_err(|_| BackendError::Internal("token state poisoned".into()))?;
        guard.take();
        let ctx = load_module(&self.module, fresh)?;
        let slot = find_slot(&ctx, &self.label)?;
        let session =
            ctx.open_rw_session(slot).map_err(|e| BackendError::Unavailable(format!("cannot open a session: {e}")))?;
        let pin = AuthPin::from(self.pin.as_str().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
                return Err(BackendError::Internal(format!("token `{}` refused the PIN", self.label)));
            }
            Err(e) => return Err(BackendError::Unavailable(format!("login: {e}"))),
        }
        self.forget_handles();
        *guard = Some(Conn { ctx, slot, idle: vec![session] });
        Ok(())
    }

    fn forget_handles(&self) {
        if let Ok(mut h) = self.handles.lock() {
            h.clear();
        }
    }

    fn checkout(&self) -> Result<(Session, Pkcs11, Slot), BackendError> {
        let mut guard = self.conn.lock().map_err(|_| BackendError::Internal("token state poisoned".into()))?;
        let conn = guard
            .as_mut()
            .ok_or_else(|| BackendError::Unavailable(format!("token `{}` is not connected", self.label)))?;
        let session = match conn.idle.pop() {
            Some(s) => s,
            None => conn
                .ctx
                .open_rw_session(conn.slot)
                .map_err(|e| BackendError::Unavailable(format!("cannot open a session: {e}")))?,
        };
        Ok((session, conn.ctx.clone(), conn.slot))
    }

    fn give_back(&self, session: Session, broken: bool) {
        let Ok(mut guard) = self.conn.lock() else { return };
        if broken {
            // The token is gone: every session and handle of this connection is void.
            *guard = None;
            drop(guard);
            self.forget_handles();
            return;
        }
        if let Some(conn) = guard.as_mut() {
            conn.idle.push(session);
        }
    }

    /// Runs `op` on a pooled session, on a blocking thread unless calls run inline.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&Lease<'_>) -> OpResult<T> + Send + 'static,
    ) -> OpResult<T> {
        let _permit = self.permits.acquire().await.map_err(|_| BackendError::Unavailable("token closed".into()))?;
        if self.inline {
            return self.run_blocking(op);
        }
        let token = self.clone();
        tokio::task::spawn_blocking(move || token.run_blocking(op))
            .await
            .map_err(|e| OpError::Backend(BackendError::Internal(format!("token task failed: {e}"))))?
    }

    /// As [`Token::run`], on the calling thread.
    pub(crate) fn run_blocking<T>(&self, op: impl FnOnce(&Lease<'_>) -> OpResult<T>) -> OpResult<T> {
        let (session, ctx, slot) = self.checkout()?;
        let lease = Lease { session, handles: &self.handles, ctx, slot, label: &self.label };
        let result = op(&lease);
        let broken = match &result {
            Err(OpError::Ck(e)) => is_connection_error(e),
            Err(OpError::Backend(BackendError::Unavailable(_))) => true,
            _ => false,
        };
        if broken {
            tracing::error!(token = %self.label, "token connection lost; dropping its sessions");
        }
        self.give_back(lease.session, broken);
        result
    }
}

fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, BackendError> {
    let slots = ctx.get_slots_with_token().map_err(|e| BackendError::Unavailable(format!("cannot list slots: {e}")))?;
    for slot in slots {
        if let Ok(info) = ctx.get_token_info(slot)
            && info.label().trim_end() == label
        {
            return Ok(slot);
        }
    }
    Err(BackendError::Unavailable(format!("no token labelled `{label}`")))
}
