//! Builds the service from settings: database, backends, policies, audit, authentication.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use keyward_api::auth::{Authenticator, Issuer, IssuerSpec, KeySource};
use keyward_audit::{AuditWriter, WriterConfig};
use keyward_authz::{CedarAuthorizer, PolicyBundle, SCHEMA_FILE};
use keyward_backend::{BuildContext, DynBackend, Registry};
use keyward_core::ports::audit::AuditStore;
use keyward_core::ports::clock::SystemClock;
use keyward_core::service::{Backends, KeyService};
use keyward_store::chain::SigningKey;
use keyward_store::{SqlAuditReader, SqlAuditStore, SqlStore};

use crate::config::{IssuerConfig, Settings};
use crate::dev;

/// Everything `serve` runs.
#[derive(Debug)]
pub struct Wired {
    /// The domain service.
    pub service: Arc<KeyService>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// The key store (for flushing counters at shutdown).
    pub store: SqlStore,
    /// The audit writer task (its shared lanes).
    pub audit_task: tokio::task::JoinHandle<()>,
    /// The audit writer, for request threads to take their own lanes.
    pub audit_writer: AuditWriter,
    /// Whether authentication is the generated dev issuer.
    pub dev_auth: bool,
    /// The policy set's origin and version, for the banner.
    pub policies: String,
    /// The audit chains (one per lane) and the key that signs their checkpoints (absent for
    /// other audit stores).
    pub checkpoints: Option<(Vec<SqlAuditStore>, Arc<SigningKey>)>,
}

/// The path of the checkpoint signing key.
pub fn signing_key_path(settings: &Settings) -> std::path::PathBuf {
    settings.audit_signing_key_file.clone().unwrap_or_else(|| settings.data_dir.join("audit-signing.key"))
}

/// Loads the checkpoint signing key; without a configured file, generates one (0600) in the
/// data directory on first use.
pub fn signing_key(settings: &Settings) -> Result<SigningKey, String> {
    let path = signing_key_path(settings);
    if settings.audit_signing_key_file.is_none() && !path.exists() {
        let text = SigningKey::generate_hex()?;
        dev::write_private(&path, format!("{}\n", text.as_str()).as_bytes())?;
        tracing::warn!(path = %path.display(), "generated an audit checkpoint signing key; back it up with the database");
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path).map_err(|e| format!("audit signing key `{}`: {e}", path.display()))?,
    );
    SigningKey::from_hex(&text).map_err(|e| format!("audit signing key `{}`: {e}", path.display()))
}

/// What an embedder chooses beyond configuration: the backend kinds that exist and where
/// audit records go (the database by default).
#[derive(Debug)]
pub struct Embedding {
    /// Backend kinds by name.
    pub registry: Registry,
    /// An audit store to use instead of the database (benchmarks isolate the request path).
    pub audit_store: Option<Arc<dyn AuditStore>>,
}

impl Default for Embedding {
    fn default() -> Self {
        Self { registry: registry(), audit_store: None }
    }
}

/// The backend kinds compiled in.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    keyward_backend_software::register(&mut r);
    #[cfg(feature = "pkcs11")]
    keyward_backend_pkcs11::register(&mut r);
    #[cfg(feature = "aws-kms")]
    keyward_backend_aws_kms::register(&mut r);
    r
}

/// Opens and migrates the database.
pub async fn database(settings: &Settings) -> Result<sea_orm::DatabaseConnection, String> {
    let db = keyward_store::connect(&settings.database_url).await.map_err(|e| e.to_string())?;
    keyward_store::migrate(&db).await.map_err(|e| e.to_string())?;
    Ok(db)
}

/// Loads the policy set: the configured directory, else `./policies` when it holds a schema,
/// else the built-in default.
pub fn policies(settings: &Settings) -> Result<PolicyBundle, String> {
    match &settings.policies {
        Some(dir) => PolicyBundle::load_dir(dir).map_err(|e| e.to_string()),
        None if Path::new("policies").join(SCHEMA_FILE).is_file() => {
            PolicyBundle::load_dir(Path::new("policies")).map_err(|e| e.to_string())
        }
        None => PolicyBundle::embedded().map_err(|e| e.to_string()),
    }
}

fn backends(settings: &Settings, registry: &Registry) -> Result<Backends, String> {
    let mut ctx = BuildContext::new(settings.data_dir.clone());
    let mut tables = settings.backends.clone();
    if tables.is_empty() {
        let mut t = toml::Table::new();
        t.insert("name".into(), "software".into());
        t.insert("kind".into(), "software".into());
        tables.push(t);
    }
    // Instances that hold another's root key are built first, so they can offer it.
    tables.sort_by_key(|t| t.contains_key("root_key_backend"));
    let mut instances: BTreeMap<String, Arc<dyn DynBackend>> = BTreeMap::new();
    for t in &tables {
        let field = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
        let name = field("name").ok_or("every [[backends]] entry needs `name`")?;
        let kind = field("kind").ok_or_else(|| format!("backend `{name}` needs `kind`"))?;
        if instances.contains_key(&name) {
            return Err(format!("backend `{name}` is declared twice"));
        }
        let built = registry.build(&name, &kind, t, &ctx).map_err(|e| e.to_string())?;
        if let Some(root) = built.root {
            ctx.roots.insert(name.clone(), root);
        }
        instances.insert(name, built.backend);
    }
    let timeout = Duration::from_millis(settings.backend_timeout_ms);
    Backends::with_timeout(instances, settings.default_backend.clone(), timeout)
        .and_then(|b| b.with_namespace_defaults(settings.namespace_backends.clone()))
        .map_err(|e| e.message().to_owned())
}

/// The authenticator; with no issuers configured, the dev HS256 issuer.
pub fn authenticator(settings: &Settings) -> Result<(Authenticator, bool), String> {
    if settings.issuers.is_empty() {
        // The dev issuer's secret is a file beside the data: fine on a developer's loopback,
        // an open door anywhere else.
        if (settings.tls.is_some() || !settings.listen.ip().is_loopback()) && !settings.allow_dev_issuer {
            return Err(format!(
                "no `[[auth.issuers]]` is configured and the listener is {}{}: the generated dev HS256 issuer \
                 serves only plain loopback. Configure an issuer, or set `auth.allow_dev_issuer = true` \
                 (KEYWARD_ALLOW_DEV_ISSUER=1) to accept dev tokens here anyway",
                settings.listen,
                if settings.tls.is_some() { " with TLS" } else { "" }
            ));
        }
        let secret = dev::dev_secret(&settings.data_dir)?;
        let issuer = Issuer::hs256(dev::DEV_ISSUER, dev::DEV_AUDIENCE, "groups", &secret, settings.leeway_seconds)?;
        return Ok((Authenticator::new(vec![issuer]), true));
    }
    let mut issuers = Vec::new();
    for i in &settings.issuers {
        let named = |e: String| format!("issuer `{}`: {e}", i.issuer);
        issuers.push(Issuer::new(issuer_spec(i, settings.leeway_seconds).map_err(named)?).map_err(named)?);
    }
    Ok((Authenticator::new(issuers), false))
}

fn issuer_spec(i: &IssuerConfig, leeway_secs: u64) -> Result<IssuerSpec, String> {
    let algorithms = i
        .algorithms
        .iter()
        .map(|a| match a.as_str() {
            "HS256" => Ok(Algorithm::HS256),
            "RS256" => Ok(Algorithm::RS256),
            "ES256" => Ok(Algorithm::ES256),
            "EdDSA" => Ok(Algorithm::EdDSA),
            other => Err(format!("algorithm `{other}` is not supported (HS256, RS256, ES256, EdDSA)")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sources = [i.secret_file.is_some(), i.public_key_file.is_some(), i.jwks_file.is_some(), i.jwks_url.is_some()];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err("set exactly one of `secret_file`, `public_key_file`, `jwks_file`, `jwks_url`".into());
    }
    let source = if let Some(path) = &i.secret_file {
        KeySource::Secret(dev::read_secret(path)?)
    } else if let Some(path) = &i.public_key_file {
        KeySource::Pem(std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?)
    } else if let Some(path) = &i.jwks_file {
        KeySource::JwksFile(path.clone())
    } else {
        KeySource::JwksUrl(i.jwks_url.clone().unwrap_or_default())
    };
    let refresh = i.jwks_refresh_seconds.unwrap_or(300);
    if !(1..=86_400).contains(&refresh) {
        return Err("`jwks_refresh_seconds` must be 1-86400".into());
    }
    Ok(IssuerSpec {
        issuer: i.issuer.clone(),
        audience: i.audience.clone(),
        algorithms,
        groups_claim: i.groups_claim.clone().unwrap_or_else(|| "groups".into()),
        source,
        leeway_secs,
        refresh: Duration::from_secs(refresh),
    })
}

/// Wires everything; must run inside the Tokio runtime.
pub async fn wire(settings: &Settings, embedding: Embedding) -> Result<Wired, String> {
    let db = database(settings).await?;
    let signer = Arc::new(signing_key(settings)?);
    let store = SqlStore::with_cache_ttl(db.clone(), Duration::from_millis(settings.key_cache_ttl_ms))
        .with_signing_key(signer.clone());
    let bundle = policies(settings)?;
    let policies = format!("{} ({}, {} policies)", bundle.origin(), bundle.version(), bundle.len());
    let authorizer = Arc::new(CedarAuthorizer::new(bundle)?.with_reload_proofs(settings.policy_proofs));
    let writer_config = WriterConfig {
        max_batch: settings.audit_max_batch,
        queue: settings.audit_queue,
        linger: Duration::from_millis(settings.audit_linger_ms),
        commit_timeout: Duration::from_millis(settings.audit_commit_timeout_ms),
    };
    // One chain per lane: each lane's store keeps its own chain head. State changes are
    // recorded on the key store's own chain, in their transactions.
    // Besides the shared lanes, one lane per request worker (see `AuditWriter::thread_lane`).
    let lane_count = settings.audit_lanes + settings.workers;
    let (mut lanes, mut chains): (Vec<Arc<dyn AuditStore>>, Vec<SqlAuditStore>) = match embedding.audit_store {
        Some(store) => (vec![store; lane_count], Vec::new()),
        None => {
            let chains: Vec<_> =
                (0..lane_count).map(|_| SqlAuditStore::new(db.clone()).with_signing_key(signer.clone())).collect();
            (chains.iter().map(|c| Arc::new(c.clone()) as Arc<dyn AuditStore>).collect(), chains)
        }
    };
    let thread_stores = lanes.split_off(settings.audit_lanes);
    let reader =
        (!chains.is_empty()).then(|| SqlAuditReader::new(SqlAuditStore::new(db.clone()), Some(signer.verifying_key())));
    chains.push(store.change_chain().clone());
    let checkpoints = Some((chains, signer));
    let (writer, audit_task) = AuditWriter::spawn_lanes(lanes, writer_config);
    let writer = writer.with_thread_stores(thread_stores);
    let mut service = KeyService::new(
        Arc::new(store.clone()),
        authorizer,
        Arc::new(writer.clone()),
        Arc::new(SystemClock),
        backends(settings, &embedding.registry)?,
    );
    if let Some(reader) = reader {
        service = service.with_audit_reader(Arc::new(reader));
    }
    service = service.with_key_pairs(Arc::new(keyward_backend_software::InProcessKeyPairs));
    service = service.with_quotas(keyward_core::service::Quotas::new(settings.quotas));
    service = service.with_rotation_limits(settings.rotation_limits.clone());
    service = service.with_approvals(settings.approvals.clone());
    if let Some(webhook) = &settings.webhook {
        service = service.with_notifier(Arc::new(crate::webhook::Webhook::new(webhook.clone())?));
    }
    let service = Arc::new(service);
    service.sync_grants().await.map_err(|e| format!("cannot load grants: {}", e.reason().unwrap_or(e.message())))?;
    let (auth, dev_auth) = authenticator(settings)?;
    auth.prime().await?;
    Ok(Wired {
        service,
        auth: Arc::new(auth),
        store,
        audit_task,
        audit_writer: writer,
        dev_auth,
        policies,
        checkpoints,
    })
}
