//! Settings: defaults, then the TOML file, then `KEYWARD_` environment, then flags, into one
//! validated struct. Errors name the setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::StateArgs;
use crate::tls::TlsFiles;

/// The TOML file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    policies: Option<PathBuf>,
    default_backend: Option<String>,
    backend_timeout_ms: Option<u64>,
    allow_insecure_http: Option<bool>,
    workers: Option<usize>,
    max_in_flight: Option<usize>,
    admission_wait_ms: Option<u64>,
    maintenance_interval_seconds: Option<u64>,
    /// Encryptions per primary version before a key rotates by itself (default 2^30).
    rotate_after_encryptions: Option<u64>,
    /// Whether ReloadPolicies proves a set safe first: `when_available` (default), `required`, `off`.
    policy_proofs: Option<String>,
    #[serde(default)]
    database: DatabaseSection,
    #[serde(default)]
    auth: AuthSection,
    #[serde(default)]
    backends: Vec<toml::Table>,
    #[serde(default)]
    audit: AuditSection,
    tls: Option<TlsSection>,
    /// The AWS KMS-compatible API: what its ARNs say.
    #[serde(default)]
    aws: AwsSection,
    /// Per-namespace settings: `[namespaces.payments] default_backend = "hsm"`.
    #[serde(default)]
    namespaces: BTreeMap<String, NamespaceSection>,
    /// The web console.
    #[serde(default)]
    console: ConsoleSection,
    /// The AWS KMS External Key Store proxy.
    #[serde(default)]
    xks: XksSection,
    /// The Kubernetes KMS v2 plugin.
    kubernetes: Option<KubernetesSection>,
    /// Request quotas.
    #[serde(default)]
    quotas: QuotasSection,
    /// Operator notifications (the deletion canary's webhook).
    #[serde(default)]
    notifications: NotificationsSection,
    /// M-of-N approvals of sensitive requests.
    #[serde(default)]
    approvals: ApprovalsSection,
}

/// `[notifications]`: where deletion canaries are posted, and with which HMAC key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsSection {
    webhook_url: Option<String>,
    webhook_secret_file: Option<PathBuf>,
    webhook_secret_env: Option<String>,
    /// Attempts per event, the first included (default 5).
    max_attempts: Option<u32>,
    /// Wait before the first retry, doubled after each (default 1000 ms).
    retry_base_ms: Option<u64>,
    /// One attempt's time limit (default 5000 ms).
    timeout_ms: Option<u64>,
}

impl NotificationsSection {
    fn resolve(&self) -> Result<Option<crate::webhook::WebhookSettings>, String> {
        let Some(raw) = &self.webhook_url else {
            if self.webhook_secret_file.is_some() || self.webhook_secret_env.is_some() {
                return Err("`notifications`: a webhook secret is set without `webhook_url`".into());
            }
            return Ok(None);
        };
        let url = reqwest::Url::parse(raw).map_err(|e| format!("`notifications.webhook_url`: {e}"))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err("`notifications.webhook_url` must be https (http only to a loopback address)".into());
        }
        let secret = match (&self.webhook_secret_file, &self.webhook_secret_env) {
            (Some(path), None) => std::fs::read_to_string(path)
                .map_err(|e| format!("`notifications.webhook_secret_file`: cannot read `{}`: {e}", path.display()))?,
            (None, Some(var)) => {
                env(var).ok_or_else(|| format!("`notifications.webhook_secret_env`: `{var}` is not set"))?
            }
            _ => {
                return Err(
                    "`notifications`: give exactly one of `webhook_secret_file` and `webhook_secret_env`".into()
                );
            }
        };
        let secret = secret.trim().as_bytes().to_vec();
        if secret.len() < 16 {
            return Err("`notifications`: the webhook secret must be at least 16 bytes".into());
        }
        let max_attempts = self.max_attempts.unwrap_or(5);
        if !(1..=20).contains(&max_attempts) {
            return Err("`notifications.max_attempts` must be 1-20".into());
        }
        Ok(Some(crate::webhook::WebhookSettings {
            url,
            secret: std::sync::Arc::new(zeroize::Zeroizing::new(secret)),
            max_attempts,
            retry_base: std::time::Duration::from_millis(self.retry_base_ms.unwrap_or(1000).clamp(10, 600_000)),
            timeout: std::time::Duration::from_millis(self.timeout_ms.unwrap_or(5000).clamp(100, 60_000)),
        }))
    }
}

/// `[quotas]`: token buckets per principal, per key and per namespace.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotasSection {
    per_principal: Option<LimitSection>,
    per_key: Option<LimitSection>,
    per_namespace: Option<LimitSection>,
    /// Replicas sharing the limits (each enforces its share); default 1.
    replicas: Option<u32>,
}

/// `{ rate = 100, burst = 200 }`: requests per second, and the most at once (default: the rate).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSection {
    rate: f64,
    burst: Option<f64>,
}

impl QuotasSection {
    fn resolve(&self) -> Result<keyward_core::service::QuotaConfig, String> {
        let limit = |name: &str, l: &Option<LimitSection>| {
            l.as_ref()
                .map(|l| {
                    keyward_core::service::Limit::new(l.rate, l.burst.unwrap_or(l.rate))
                        .map_err(|e| format!("`quotas.{name}`: {e}"))
                })
                .transpose()
        };
        let replicas = self.replicas.unwrap_or(1);
        if replicas == 0 {
            return Err("`quotas.replicas` must be at least 1".into());
        }
        Ok(keyward_core::service::QuotaConfig {
            per_principal: limit("per_principal", &self.per_principal)?,
            per_key: limit("per_key", &self.per_key)?,
            per_namespace: limit("per_namespace", &self.per_namespace)?,
            replicas,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KubernetesSection {
    socket: PathBuf,
    key: String,
    #[serde(default = "default_kubernetes_principal")]
    principal: String,
    #[serde(default)]
    groups: Vec<String>,
}

fn default_kubernetes_principal() -> String {
    "Keyward::Service::\"kubernetes\"".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct XksSection {
    listen: Option<String>,
    fleet_size: Option<u32>,
    #[serde(default)]
    stores: Vec<XksStoreSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XksStoreSection {
    #[serde(default)]
    path_prefix: String,
    #[serde(default = "default_xks_group")]
    group: String,
    credentials: Vec<XksCredentialSection>,
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

fn default_xks_group() -> String {
    "xks".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XksCredentialSection {
    access_key_id: String,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
}

impl XksCredentialSection {
    fn resolve(&self) -> Result<keyward_api::xks::XksCredential, String> {
        let id = &self.access_key_id;
        let secret = match (&self.secret_file, &self.secret_env) {
            (Some(path), None) => std::fs::read_to_string(path)
                .map_err(|e| format!("xks credential `{id}`: cannot read `{}`: {e}", path.display()))?,
            (None, Some(var)) => env(var).ok_or_else(|| format!("xks credential `{id}`: `{var}` is not set"))?,
            _ => return Err(format!("xks credential `{id}`: give exactly one of `secret_file` and `secret_env`")),
        };
        Ok(keyward_api::xks::XksCredential {
            access_key_id: id.clone(),
            secret: zeroize::Zeroizing::new(secret.trim().to_owned()),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleSection {
    oidc: Option<ConsoleOidc>,
}

/// `[console.oidc]`: the console's sign-in through an OpenID Connect provider.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleOidc {
    /// The provider's issuer: one of `[[auth.issuers]]`.
    pub issuer: String,
    /// The console's (public) client id at the provider.
    pub client_id: String,
    /// Scopes, space-separated (default `openid`).
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// Which token the console sends: `access_token` (default) or `id_token`.
    #[serde(default = "default_token")]
    pub token: String,
    /// Overrides the discovered authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// Overrides the discovered token endpoint.
    pub token_endpoint: Option<String>,
}

fn default_scopes() -> String {
    "openid".into()
}

fn default_token() -> String {
    "access_token".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsSection {
    region: Option<String>,
    account_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamespaceSection {
    default_backend: Option<String>,
    /// Encryptions per primary version before this namespace's keys rotate by themselves.
    rotate_after_encryptions: Option<u64>,
    /// Approvals sensitive requests on this namespace's keys need.
    approvals_required: Option<u32>,
}

/// `[approvals]`: how many approvals sensitive requests need, and how long they wait.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsSection {
    /// Default 0: nothing waits.
    required: Option<u32>,
    /// Default 24.
    expires_hours: Option<u32>,
}

fn approvals(
    section: &ApprovalsSection,
    namespaces: &BTreeMap<String, NamespaceSection>,
) -> Result<keyward_core::service::ApprovalConfig, String> {
    let max = keyward_core::service::MAX_APPROVALS;
    let check = |name: &str, n: u32| {
        if n <= max { Ok(n) } else { Err(format!("`{name}` must be 0-{max}, not {n}")) }
    };
    let mut config = keyward_core::service::ApprovalConfig::default();
    if let Some(n) = section.required {
        config.required = check("approvals.required", n)?;
    }
    if let Some(h) = section.expires_hours {
        if !(1..=720).contains(&h) {
            return Err(format!("`approvals.expires_hours` must be 1-720, not {h}"));
        }
        config.ttl = chrono::Duration::hours(i64::from(h));
    }
    for (ns, s) in namespaces {
        if let Some(n) = s.approvals_required {
            config.namespaces.insert(ns.clone(), check(&format!("namespaces.{ns}.approvals_required"), n)?);
        }
    }
    Ok(config)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    url: Option<String>,
    key_cache_ttl_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    #[serde(default)]
    issuers: Vec<IssuerConfig>,
    leeway_seconds: Option<u64>,
    allow_dev_issuer: Option<bool>,
}

/// One `[[auth.issuers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` value.
    pub issuer: String,
    /// The required `aud`.
    pub audience: String,
    /// Allowed algorithms.
    pub algorithms: Vec<String>,
    /// HS256 shared secret file.
    pub secret_file: Option<PathBuf>,
    /// PEM public key file.
    pub public_key_file: Option<PathBuf>,
    /// JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// JWKS URL.
    pub jwks_url: Option<String>,
    /// The groups claim (default `groups`).
    pub groups_claim: Option<String>,
    /// Seconds between JWKS reloads (default 300).
    pub jwks_refresh_seconds: Option<u64>,
}

/// One lane gives the largest batches, which is what a database on the same few cores needs;
/// more lanes overlap commits when the database is remote and its round trips dominate.
const DEFAULT_AUDIT_LANES: usize = 1;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSection {
    max_batch: Option<usize>,
    lanes: Option<usize>,
    queue: Option<usize>,
    linger_ms: Option<u64>,
    commit_timeout_ms: Option<u64>,
    checkpoint_interval_seconds: Option<u64>,
    signing_key_file: Option<PathBuf>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (absolute).
    pub data_dir: PathBuf,
    /// Policy directory, when set.
    pub policies: Option<PathBuf>,
    /// The backend new keys use by default.
    pub default_backend: String,
    /// Longest one backend call may take before it fails and marks the backend down.
    pub backend_timeout_ms: u64,
    /// Namespaces whose new keys default to another backend than `default_backend`.
    pub namespace_backends: BTreeMap<String, String>,
    /// HTTP worker threads.
    pub workers: usize,
    /// Requests running at once; more are refused with 429 (see `keyward_api::admission`).
    pub max_in_flight: usize,
    /// How long a request may wait for an in-flight slot before it is refused.
    pub admission_wait_ms: u64,
    /// Seconds between maintenance passes.
    pub maintenance_interval_seconds: u64,
    /// Database URL.
    pub database_url: String,
    /// How long a cached key record is trusted when no change notification arrives.
    pub key_cache_ttl_ms: u64,
    /// Configured issuers (none: the dev HS256 issuer).
    pub issuers: Vec<IssuerConfig>,
    /// JWT clock leeway.
    pub leeway_seconds: u64,
    /// Whether the generated dev issuer may serve off loopback or over TLS.
    pub allow_dev_issuer: bool,
    /// Backend instance tables (`name`, `kind`, settings).
    pub backends: Vec<toml::Table>,
    /// Audit batch size.
    pub audit_max_batch: usize,
    /// Audit writer lanes (each commits its own batches and writes its own chain).
    pub audit_lanes: usize,
    /// Audit queue bound.
    pub audit_queue: usize,
    /// Audit batch linger.
    pub audit_linger_ms: u64,
    /// A commit slower than this fails (requests answer 503).
    pub audit_commit_timeout_ms: u64,
    /// Seconds between signed checkpoints of the audit chain.
    pub audit_checkpoint_interval_seconds: u64,
    /// The Ed25519 checkpoint signing key (default `<data_dir>/audit-signing.key`, generated).
    pub audit_signing_key_file: Option<PathBuf>,
    /// TLS on the listener, when configured.
    pub tls: Option<TlsFiles>,
    /// The AWS KMS-compatible API's region and account id (written in ARNs).
    pub aws: keyward_api::aws::AwsSettings,
    /// The console's OIDC sign-in, when configured.
    pub console_oidc: Option<ConsoleOidc>,
    /// The XKS proxy's key stores.
    pub xks: std::sync::Arc<keyward_api::xks::Xks>,
    /// A listener serving the XKS proxy only, besides the main one.
    pub xks_listen: Option<SocketAddr>,
    /// The Kubernetes KMS v2 plugin, when configured.
    pub kubernetes: Option<keyward_kubernetes::Settings>,
    /// Request quotas.
    pub quotas: keyward_core::service::QuotaConfig,
    /// The deletion canary's webhook, when configured.
    pub webhook: Option<crate::webhook::WebhookSettings>,
    /// Whether ReloadPolicies proves a set safe before loading it.
    pub policy_proofs: keyward_authz::ReloadProofs,
    /// Approvals sensitive requests need.
    pub approvals: keyward_core::service::ApprovalConfig,
    /// Encryption counts that rotate keys.
    pub rotation_limits: keyward_core::service::RotationLimits,
}

/// Requests running at once by default: enough to keep every core busy while some wait on the
/// database, few enough that an admitted request's wait stays short.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the configuration file, if any.
pub fn read_file(path: Option<&Path>) -> Result<FileConfig, String> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config `{}`: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config `{}`: {e}", path.display()))
}

/// The default and per-namespace encryption limits, each within [`keyward_core::service::ROTATE_AFTER`].
fn rotation_limits(
    default: Option<u64>,
    namespaces: &BTreeMap<String, NamespaceSection>,
) -> Result<keyward_core::service::RotationLimits, String> {
    let range = keyward_core::service::ROTATE_AFTER;
    let check = |name: &str, n: u64| {
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(format!("`{name}` must be {}-{}, not {n}", range.start(), range.end()))
        }
    };
    let mut limits = keyward_core::service::RotationLimits::default();
    if let Some(n) = default {
        limits.default = check("rotate_after_encryptions", n)?;
    }
    for (ns, section) in namespaces {
        if let Some(n) = section.rotate_after_encryptions {
            limits.namespaces.insert(ns.clone(), check(&format!("namespaces.{ns}.rotate_after_encryptions"), n)?);
        }
    }
    Ok(limits)
}

/// Resolves settings from the file, environment and flags.
pub fn resolve(state: &StateArgs, listen: Option<&str>, policies: Option<&Path>) -> Result<Settings, String> {
    let file = read_file(state.config.as_deref())?;
    // The writer's own defaults, so the two never disagree.
    let writer = keyward_audit::WriterConfig::default();
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let listen = listen.map(str::to_owned).or(file.listen).unwrap_or_else(|| "127.0.0.1:8420".into());
    let listen: SocketAddr =
        listen.parse().map_err(|_| format!("`listen`: `{listen}` is not an address like 127.0.0.1:8420"))?;
    let data_dir = state.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("keyward-data"));
    let data_dir = absolute(&data_dir)?;
    let database_url = state
        .database_url
        .clone()
        .or(file.database.url)
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("keyward.db").display()));
    let allow_insecure_http = match env("KEYWARD_ALLOW_INSECURE_HTTP") {
        Some(v) => v == "true" || v == "1",
        None => file.allow_insecure_http.unwrap_or(false),
    };
    let tls = match (env("KEYWARD_TLS_CERT_FILE"), env("KEYWARD_TLS_KEY_FILE"), file.tls) {
        (Some(cert), Some(key), file_tls) => Some(TlsFiles {
            cert_file: cert.into(),
            key_file: key.into(),
            client_ca_file: env("KEYWARD_TLS_CLIENT_CA_FILE")
                .map(PathBuf::from)
                .or(file_tls.and_then(|t| t.client_ca_file)),
        }),
        (None, None, Some(t)) => Some(TlsFiles {
            cert_file: t.cert_file,
            key_file: t.key_file,
            client_ca_file: env("KEYWARD_TLS_CLIENT_CA_FILE").map(PathBuf::from).or(t.client_ca_file),
        }),
        (None, None, None) => None,
        _ => return Err("set both KEYWARD_TLS_CERT_FILE and KEYWARD_TLS_KEY_FILE".into()),
    };
    if tls.is_none() && !listen.ip().is_loopback() && !allow_insecure_http {
        return Err(format!(
            "`listen` is {listen}: plain HTTP is only served on loopback; configure `[tls]` (cert_file, key_file), \
             or set `allow_insecure_http = true` only behind a TLS-terminating proxy"
        ));
    }
    let leeway_seconds = file.auth.leeway_seconds.unwrap_or(30);
    if leeway_seconds > 60 {
        return Err("`auth.leeway_seconds` must be at most 60".into());
    }
    let defaults = keyward_api::aws::AwsSettings::default();
    let aws = keyward_api::aws::AwsSettings {
        region: env("KEYWARD_AWS_REGION").or(file.aws.region).unwrap_or(defaults.region),
        account_id: env("KEYWARD_AWS_ACCOUNT_ID").or(file.aws.account_id).unwrap_or(defaults.account_id),
    };
    aws.validate()?;
    if let Some(oidc) = &file.console.oidc {
        oidc.validate(&file.auth.issuers)?;
    }
    let mut xks_stores = Vec::new();
    for s in &file.xks.stores {
        let credentials = s.credentials.iter().map(XksCredentialSection::resolve).collect::<Result<Vec<_>, _>>()?;
        let keys = s
            .keys
            .iter()
            .map(|(external, key)| {
                key.parse()
                    .map(|k| (external.clone(), k))
                    .map_err(|e| format!("xks store `{}`: key `{key}`: {e}", s.path_prefix))
            })
            .collect::<Result<_, _>>()?;
        xks_stores.push(keyward_api::xks::XksStore {
            path_prefix: s.path_prefix.clone(),
            credentials,
            keys,
            group: s.group.clone(),
        });
    }
    let xks = keyward_api::xks::Xks::new(xks_stores, file.xks.fleet_size.unwrap_or(1))?;
    let xks_listen = file
        .xks
        .listen
        .as_deref()
        .map(|l| l.parse::<SocketAddr>().map_err(|_| format!("`xks.listen`: `{l}` is not an address")))
        .transpose()?;
    if let Some(addr) = xks_listen
        && tls.is_none()
        && !addr.ip().is_loopback()
        && !allow_insecure_http
    {
        return Err(format!("`xks.listen` is {addr}: plain HTTP is only served on loopback; configure `[tls]`"));
    }
    let kubernetes = file
        .kubernetes
        .map(|k| {
            Ok::<_, String>(keyward_kubernetes::Settings {
                socket: absolute(&k.socket)?,
                key: k.key.parse().map_err(|e| format!("`kubernetes.key` `{}`: {e}", k.key))?,
                principal: keyward_core::model::principal::Principal::from_uid(&k.principal, k.groups)
                    .map_err(|e| format!("`kubernetes.principal`: {e}"))?,
            })
        })
        .transpose()?;
    let workers = file.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    Ok(Settings {
        listen,
        data_dir,
        policies: policies.map(Path::to_path_buf).or(file.policies),
        backend_timeout_ms: file.backend_timeout_ms.unwrap_or(1500).clamp(50, 60_000),
        namespace_backends: file
            .namespaces
            .iter()
            .filter_map(|(ns, s)| s.default_backend.clone().map(|b| (ns.clone(), b)))
            .collect(),
        default_backend: env("KEYWARD_DEFAULT_BACKEND").or(file.default_backend).unwrap_or_else(|| "software".into()),
        workers: workers.clamp(1, 64),
        max_in_flight: file.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT).clamp(1, 100_000),
        admission_wait_ms: file.admission_wait_ms.unwrap_or(1).min(10_000),
        maintenance_interval_seconds: file.maintenance_interval_seconds.unwrap_or(60).max(1),
        database_url,
        key_cache_ttl_ms: file.database.key_cache_ttl_ms.unwrap_or(1000).min(3_600_000),
        issuers: file.auth.issuers,
        leeway_seconds,
        allow_dev_issuer: match env("KEYWARD_ALLOW_DEV_ISSUER") {
            Some(v) => v == "true" || v == "1",
            None => file.auth.allow_dev_issuer.unwrap_or(false),
        },
        backends: file.backends,
        audit_max_batch: file.audit.max_batch.unwrap_or(writer.max_batch).clamp(1, 10_000),
        audit_lanes: file.audit.lanes.unwrap_or(DEFAULT_AUDIT_LANES).clamp(1, 64),
        audit_queue: file.audit.queue.unwrap_or(writer.queue).clamp(1, 1_000_000),
        audit_linger_ms: file.audit.linger_ms.unwrap_or(millis(writer.linger)).min(100),
        audit_commit_timeout_ms: file
            .audit
            .commit_timeout_ms
            .unwrap_or(millis(writer.commit_timeout))
            .clamp(100, 60_000),
        audit_checkpoint_interval_seconds: file.audit.checkpoint_interval_seconds.unwrap_or(60).clamp(1, 86_400),
        audit_signing_key_file: file.audit.signing_key_file,
        tls,
        aws,
        console_oidc: file.console.oidc,
        xks: std::sync::Arc::new(xks),
        xks_listen,
        kubernetes,
        quotas: file.quotas.resolve()?,
        webhook: file.notifications.resolve()?,
        approvals: approvals(&file.approvals, &file.namespaces)?,
        policy_proofs: match file.policy_proofs.as_deref() {
            None | Some("when_available") => keyward_authz::ReloadProofs::WhenAvailable,
            Some("required") => keyward_authz::ReloadProofs::Required,
            Some("off") => keyward_authz::ReloadProofs::Off,
            Some(other) => {
                return Err(format!("`policy_proofs` must be when_available, required or off, not `{other}`"));
            }
        },
        rotation_limits: rotation_limits(file.rotate_after_encryptions, &file.namespaces)?,
    })
}

impl ConsoleOidc {
    fn validate(&self, issuers: &[IssuerConfig]) -> Result<(), String> {
        if !issuers.iter().any(|i| i.issuer == self.issuer) {
            return Err(format!(
                "`console.oidc.issuer` `{}` is not one of `[[auth.issuers]]`: the server would refuse its tokens",
                self.issuer
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err("`console.oidc.client_id` is empty".into());
        }
        if self.token != "access_token" && self.token != "id_token" {
            return Err(format!("`console.oidc.token` is `{}`: use `access_token` or `id_token`", self.token));
        }
        for (name, url) in
            [("authorization_endpoint", &self.authorization_endpoint), ("token_endpoint", &self.token_endpoint)]
        {
            if let Some(url) = url {
                keyward_api::auth::check_fetch_url(url).map_err(|e| format!("`console.oidc.{name}`: {e}"))?;
            }
        }
        if self.authorization_endpoint.is_none() || self.token_endpoint.is_none() {
            keyward_api::auth::check_fetch_url(&self.issuer)
                .map_err(|e| format!("`console.oidc.issuer` (discovery): {e}"))?;
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir().map(|d| d.join(p)).map_err(|e| format!("cannot resolve `{}`: {e}", p.display()))
}
