//! Where a command's server is and who is asking: flags and environment first, then a named
//! server from the profile file, then the local default.
//!
//! ```toml
//! # ~/.config/keyward/config.toml (or KEYWARD_CONFIG_FILE)
//! default = "prod"
//! [servers.prod]
//! url = "https://kms.example.com"
//! token_file = "/home/me/.keyward/prod.token"
//! ca_file = "/etc/ssl/private-ca.pem"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use keyward_client::api::Client;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::cli::RemoteArgs;

/// The profile file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profiles {
    default: Option<String>,
    #[serde(default)]
    servers: BTreeMap<String, Profile>,
}

/// One named server.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    url: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

fn profile_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEYWARD_CONFIG_FILE") {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("keyward").join("config.toml"))
}

/// The named (or default) profile; none when there is no file and none was named.
fn profile(name: Option<&str>) -> Result<Profile, String> {
    let Some(path) = profile_path() else {
        return if name.is_none() {
            Ok(Profile::default())
        } else {
            Err("no profile file: set HOME or KEYWARD_CONFIG_FILE".into())
        };
    };
    let shown = path.display();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.is_none() => return Ok(Profile::default()),
        Err(e) => return Err(format!("profile file `{shown}`: {e}")),
    };
    let profiles: Profiles = toml::from_str(&text).map_err(|e| format!("profile file `{shown}`: {e}"))?;
    match name.map(str::to_owned).or(profiles.default.clone()) {
        None => Ok(Profile::default()),
        Some(n) => profiles.servers.get(&n).cloned().ok_or_else(|| format!("no server `{n}` in `{shown}`")),
    }
}

/// A client for the server the arguments, the environment or the profile name.
pub fn client(remote: &RemoteArgs) -> Result<Client, String> {
    let p = profile(remote.profile.as_deref())?;
    let server = remote.server.clone().or(p.url).unwrap_or_else(|| "http://127.0.0.1:8420".into());
    let token = match (&remote.token, remote.token_file.as_ref().or(p.token_file.as_ref())) {
        (Some(t), _) => Zeroizing::new(t.clone()),
        (None, Some(path)) => Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("token file `{}`: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => {
            return Err("no token: pass --token or --token-file, set KEYWARD_TOKEN or KEYWARD_TOKEN_FILE, or name a \
                        token_file in the profile"
                .into());
        }
    };
    let ca = match remote.ca_file.as_ref().or(p.ca_file.as_ref()) {
        Some(path) => Some(std::fs::read(path).map_err(|e| format!("`{}`: {e}", path.display()))?),
        None => None,
    };
    Client::new(&server, &token, ca.as_deref()).map_err(|e| e.to_string())
}
