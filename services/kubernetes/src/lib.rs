//! Keyward as a Kubernetes KMS v2 plugin: the `v2.KeyManagementService` gRPC service on a unix
//! socket (as kube-apiserver dials it), a thin adapter onto the [`KeyService`]. Encrypt and
//! Decrypt are Keyward's own Encrypt and Decrypt under the configured key, as the configured
//! principal, decided by the same policies and audited with the apiserver's request `uid`;
//! Status is an audited DescribeKey plus a live probe of the key's backend.

mod plugin;

use std::path::{Path, PathBuf};

use keyward_core::model::ids::KeyRef;
use keyward_core::model::principal::Principal;

pub use plugin::{API_VERSION, Plugin};

/// The generated protocol types and service.
#[allow(missing_docs, missing_debug_implementations, clippy::all, clippy::pedantic, reason = "generated")]
pub mod proto {
    tonic::include_proto!("v2");
}

/// The audit trail's name for this front door.
pub const INTERFACE: &str = "kubernetes";

/// `[kubernetes]`: where to listen, which key, as whom.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The unix socket (created mode 0600; a stale socket file is replaced).
    pub socket: PathBuf,
    /// The key that wraps the apiserver's seeds (an alias lets it be repointed).
    pub key: KeyRef,
    /// Who the plugin acts as under the policies.
    pub principal: Principal,
}

/// Binds the socket (0600), replacing a stale one left by a crash but never another file.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, String> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("`kubernetes.socket` {} exists and is not a socket", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    }
    let listener =
        tokio::net::UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    Ok(listener)
}

/// Serves the plugin on `listener` until `shutdown` resolves, then removes the socket file.
pub async fn serve(
    plugin: Plugin,
    listener: tokio::net::UnixListener,
    socket: PathBuf,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let service = proto::key_management_service_server::KeyManagementServiceServer::new(plugin)
        .max_decoding_message_size(plugin::MAX_MESSAGE)
        .max_encoding_message_size(plugin::MAX_MESSAGE);
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let served = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| format!("kubernetes plugin: {e}"));
    let _ = std::fs::remove_file(&socket);
    served
}
