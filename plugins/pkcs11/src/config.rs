//! The pkcs11 backend's settings (DESIGN §9 names).

use std::path::PathBuf;

use zeroize::Zeroizing;

/// Settings of one `kind = "pkcs11"` instance.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label; the slot is found by it (slot ids change when tokens are added).
    pub token_label: String,
    /// A file holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// An environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// Most sessions open at once (default 4).
    pub sessions: Option<usize>,
    /// Where calls run: `"pool"` (default) hands each to a blocking thread, right for a network
    /// HSM whose calls take milliseconds; `"inline"` runs them on the request's thread, right
    /// for an in-process module that answers in microseconds (SoftHSM2). Inline calls cannot be
    /// cut short by the backend timeout.
    pub calls: Option<String>,
    /// The label of the token key that wraps another backend's root material (default
    /// `keyward-root`).
    pub root_key_label: Option<String>,
}

impl Pkcs11Config {
    /// The PIN, from its file or variable; never from the configuration in clear.
    pub fn pin(&self) -> Result<Zeroizing<String>, String> {
        let raw = match (&self.pin_file, &self.pin_env) {
            (Some(_), Some(_)) => return Err("set one of `pin_file` and `pin_env`, not both".into()),
            (None, None) => return Err("the PIN comes from `pin_file` or `pin_env`".into()),
            (Some(path), None) => Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| format!("PIN file `{}`: {e}", path.display()))?,
            ),
            (None, Some(var)) => {
                Zeroizing::new(std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))?)
            }
        };
        let pin = Zeroizing::new(raw.trim().to_owned());
        if pin.is_empty() {
            return Err("the PIN is empty".into());
        }
        Ok(pin)
    }

    /// Whether calls run inline (see [`Pkcs11Config::calls`]).
    pub fn inline_calls(&self) -> Result<bool, String> {
        match self.calls.as_deref() {
            None | Some("pool") => Ok(false),
            Some("inline") => Ok(true),
            Some(other) => Err(format!("`calls` must be \"pool\" or \"inline\", not \"{other}\"")),
        }
    }

    /// Session pool size.
    pub fn session_limit(&self) -> usize {
        self.sessions.unwrap_or(4).clamp(1, 256)
    }
}
