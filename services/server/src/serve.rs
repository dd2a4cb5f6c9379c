//! `keyward serve`: wire, listen, run background work, shut down gracefully.

use std::time::Duration;

use actix_web::HttpServer;
use keyward_api::AppState;

use crate::config::Settings;
use crate::dev;
use crate::tls::CertStore;
use crate::wiring;

/// Runs the server until SIGTERM or SIGINT; returns after in-flight requests finish and the
/// audit writer has flushed.
pub async fn serve(settings: Settings, embedding: wiring::Embedding) -> Result<(), String> {
    // One TLS provider for the listener and JWKS fetches; a second install is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    crate::data_dir::prepare(&settings)?;
    let wired = wiring::wire(&settings, embedding).await?;
    let console =
        keyward_api::console::Console::new(crate::console_oidc::resolve(settings.console_oidc.as_ref()).await?);
    let aws = std::sync::Arc::new(keyward_api::aws::AwsApi { settings: settings.aws.clone(), ..Default::default() });
    let admission = keyward_api::admission::Admission::new(
        settings.max_in_flight,
        Duration::from_millis(settings.admission_wait_ms),
    );
    let state = AppState {
        service: wired.service.clone(),
        auth: wired.auth.clone(),
        aws,
        metrics: metrics_recorder(),
        admission,
        console: std::sync::Arc::new(console),
        xks: settings.xks.clone(),
    };
    let certs = settings.tls.clone().map(CertStore::load).transpose()?;
    let xks_server = match settings.xks_listen {
        Some(addr) => {
            let state = state.clone();
            let server = HttpServer::new(move || keyward_api::xks_app(state.clone()))
                .workers(settings.workers)
                .shutdown_timeout(30)
                .disable_signals();
            let server = match &certs {
                Some(certs) => server.bind_rustls_0_23(addr, certs.server_config()?),
                None => server.bind(addr),
            }
            .map_err(|e| format!("cannot listen on {addr} (xks): {e}"))?;
            tracing::info!(addr = %server.addrs().first().copied().unwrap_or(addr), "xks proxy listening");
            Some(server.run())
        }
        None => None,
    };
    let writer = wired.audit_writer.clone();
    let server = HttpServer::new(move || {
        // Built once on each worker thread: the worker commits its own audit records.
        if let Some(lane) = writer.thread_lane() {
            actix_web::rt::spawn(lane);
        }
        keyward_api::app(state.clone())
    })
    .workers(settings.workers)
    .shutdown_timeout(30)
    .on_connect(crate::tls::on_connect);
    let server = match &certs {
        Some(certs) => server.bind_rustls_0_23(settings.listen, certs.server_config()?),
        None => server.bind(settings.listen),
    }
    .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = server.addrs().first().copied().unwrap_or(settings.listen);
    let stop_flusher = std::sync::Arc::new(tokio::sync::Notify::new());
    let rotator = wired.service.clone();
    let flusher = wired.store.spawn_usage_flusher(Duration::from_secs(1), stop_flusher.clone(), move |totals| {
        // Off the flusher's loop: a rotation waits for its backend and its commit.
        let service = rotator.clone();
        tokio::spawn(async move {
            for t in totals {
                if let Err(e) = service.rotate_if_worn(t.key, t.version, t.total, t.batch).await {
                    tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), key = %t.key, "rotation by usage failed; will retry after the next flush");
                }
            }
        });
    });
    let key_changes = wired.store.spawn_change_listener(&settings.database_url);
    let maintenance = spawn_maintenance(wired.service.clone(), settings.maintenance_interval_seconds);
    // Without announcements (SQLite, or a lost LISTEN connection) grants are re-read at least
    // this often: every 2 s, or the key cache's TTL when that is longer.
    let grant_period = GRANT_SYNC_INTERVAL.max(Duration::from_millis(settings.key_cache_ttl_ms));
    let grant_sync = spawn_grant_sync(wired.service.clone(), wired.store.grant_changes(), grant_period);
    let backend_probe = spawn_backend_probe(wired.service.clone());
    let checkpointer = wired
        .checkpoints
        .clone()
        .map(|(chains, key)| spawn_checkpoints(chains, key, settings.audit_checkpoint_interval_seconds));
    let hangup = spawn_reload_on_hangup(wired.service.clone(), certs.clone())?;
    let scheme = if certs.is_some() { "https" } else { "http" };
    banner(&settings, &format!("{scheme}://{addr}"), wired.dev_auth, &wired.policies)?;
    tracing::info!(%addr, database = %redacted(&settings.database_url), "keyward listening");

    let stop_kubernetes = std::sync::Arc::new(tokio::sync::Notify::new());
    let kubernetes = match &settings.kubernetes {
        Some(k) => {
            let listener = keyward_kubernetes::bind(&k.socket)?;
            let plugin = keyward_kubernetes::Plugin::new(wired.service.clone(), k.key.clone(), k.principal.clone());
            let stop = stop_kubernetes.clone();
            tracing::info!(socket = %k.socket.display(), key = %k.key, "kubernetes KMS v2 plugin listening");
            Some(tokio::spawn(keyward_kubernetes::serve(plugin, listener, k.socket.clone(), async move {
                stop.notified().await;
            })))
        }
        None => None,
    };
    let xks_handle = xks_server.map(|s| {
        let handle = s.handle();
        (handle, tokio::spawn(s))
    });
    server.run().await.map_err(|e| format!("server failed: {e}"))?;
    if let Some((handle, task)) = xks_handle {
        handle.stop(true).await;
        let _ = task.await;
    }
    if let Some(task) = kubernetes {
        stop_kubernetes.notify_one();
        if let Ok(Err(e)) = task.await {
            tracing::warn!(error = %e, "kubernetes plugin stopped with an error");
        }
    }

    tracing::info!("shutting down: flushing counters and the audit trail");
    maintenance.abort();
    // Not aborted: a flush in progress finishes (an abandoned one would put its counts back,
    // and the final flush below writes them).
    stop_flusher.notify_one();
    let _ = flusher.await;
    if let Some(listener) = key_changes {
        listener.abort();
    }
    grant_sync.abort();
    backend_probe.abort();
    if let Some(c) = checkpointer {
        c.abort();
    }
    hangup.abort();
    // A pooled connection opened on a worker's runtime fails once that worker has stopped
    // (its IO driver is gone); the pool drops it, and the next attempt takes another or opens
    // one here.
    let flushed = retry(FINAL_FLUSH_ATTEMPTS, Duration::from_millis(50), async || wired.store.flush_usage().await);
    if let Err(e) = flushed.await {
        tracing::warn!(error = %e, "usage counters not flushed at shutdown");
    }
    drop(wired.service);
    drop(wired.audit_writer);
    // The writer stops once the last sender is gone and its queue is committed.
    if tokio::time::timeout(Duration::from_secs(10), wired.audit_task).await.is_err() {
        tracing::warn!("audit writer did not stop within 10 s");
    }
    // A last checkpoint per chain covers every record of this run. A busy database (no pooled
    // connection within a second) is retried for a while: an unsigned tail is what this avoids.
    if let Some((chains, key)) = &wired.checkpoints {
        for chain in chains {
            let pause = Duration::from_millis(200);
            let written =
                retry(FINAL_CHECKPOINT_ATTEMPTS, pause, async || chain.checkpoint(key, chrono::Utc::now()).await);
            if let Err(e) = written.await {
                tracing::warn!(error = %e, "final audit checkpoint not written");
            }
        }
    }
    Ok(())
}

/// Runs `f` up to `attempts` times, `pause` apart, until it succeeds; the last error otherwise.
async fn retry<T, E>(attempts: u32, pause: Duration, mut f: impl AsyncFnMut() -> Result<T, E>) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        match f().await {
            Err(_) if attempt < attempts => {
                attempt += 1;
                tokio::time::sleep(pause).await;
            }
            done => return done,
        }
    }
}

/// Tries at the final checkpoint of each chain before giving up (200 ms apart).
const FINAL_CHECKPOINT_ATTEMPTS: u32 = 10;

/// Tries at the final usage flush (50 ms apart): more than the pool's 16 connections, each of
/// which may have been opened on a stopped worker.
const FINAL_FLUSH_ATTEMPTS: u32 = 20;

/// Grants made on other replicas reach this one within this interval.
pub const GRANT_SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// Runs `work` every `period` (the first run at once) until the task is aborted.
fn every<F: Future<Output = ()> + Send>(
    period: Duration,
    mut work: impl FnMut() -> F + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            work().await;
        }
    })
}

/// Re-reads grants when another replica announces a change (Postgres NOTIFY), and at least
/// every `period` (the fallback when announcements are down).
fn spawn_grant_sync(
    service: std::sync::Arc<keyward_core::service::KeyService>,
    changes: std::sync::Arc<tokio::sync::Notify>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = None;
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = changes.notified() => {}
            }
            if let Err(e) = service.sync_grants_if_changed(&mut seen).await {
                tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), "grant sync failed");
            }
        }
    })
}

/// A backend marked down is probed this often; its keys work again within about this time
/// after it returns.
pub const BACKEND_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How often every backend is probed, up or down (down ones: every [`BACKEND_PROBE_INTERVAL`]).
pub const BACKEND_HEALTH_INTERVAL: Duration = Duration::from_secs(10);

/// Keeps each backend's up/down state, which requests and `/readyz` read: down backends are
/// probed every second (to bring them back), all of them every ten.
fn spawn_backend_probe(service: std::sync::Arc<keyward_core::service::KeyService>) -> tokio::task::JoinHandle<()> {
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let all_every = BACKEND_HEALTH_INTERVAL.as_secs() / BACKEND_PROBE_INTERVAL.as_secs().max(1);
    every(BACKEND_PROBE_INTERVAL, move || {
        let (service, ticks) = (service.clone(), ticks.clone());
        async move {
            let n = ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            service.probe_backends(n % all_every.max(1) == 0).await;
        }
    })
}

/// SIGHUP reloads the policy set and the TLS certificate; a failed reload keeps the old one.
fn spawn_reload_on_hangup(
    service: std::sync::Arc<keyward_core::service::KeyService>,
    certs: Option<std::sync::Arc<CertStore>>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // The proofs run a solver for a moment: off the runtime's threads.
            let authorizer = service.authorizer().clone();
            match tokio::task::spawn_blocking(move || authorizer.reload(false)).await {
                Ok(Ok(r)) => tracing::info!(version = %r.version, proofs = %r.proofs, "SIGHUP: policies reloaded"),
                Ok(Err(problems)) => tracing::error!(%problems, "SIGHUP: policy set refused; keeping the active set"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: the reload task failed; keeping the active set"),
            }
            if let Some(certs) = &certs {
                match certs.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the old certificate"),
                }
            }
        }
    }))
}

/// Signs the chain head every interval, also when idle: a checkpoint proves how far the chain
/// reached, so deleting its newest records is detected.
fn spawn_checkpoints(
    chains: Vec<keyward_store::SqlAuditStore>,
    key: std::sync::Arc<keyward_store::chain::SigningKey>,
    interval: u64,
) -> tokio::task::JoinHandle<()> {
    every(Duration::from_secs(interval), move || {
        let (chains, key) = (chains.clone(), key.clone());
        async move {
            for chain in &chains {
                if let Err(e) = chain.checkpoint(&key, chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "audit checkpoint not written");
                }
            }
        }
    })
}

/// Installs the process-wide Prometheus recorder and returns its renderer (none when another
/// recorder is already installed, as in an embedding process).
fn metrics_recorder() -> Option<keyward_api::state::MetricsRenderer> {
    // Latency buckets from 100 µs to 10 s; counts for batch sizes.
    let seconds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
    let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&seconds)
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("keyward_audit_batch_records".into()),
                &sizes,
            )
        })
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    let upkeep = handle.clone();
    every(Duration::from_secs(5), move || {
        upkeep.run_upkeep();
        std::future::ready(())
    });
    Some(std::sync::Arc::new(move || handle.render()))
}

fn spawn_maintenance(
    service: std::sync::Arc<keyward_core::service::KeyService>,
    interval: u64,
) -> tokio::task::JoinHandle<()> {
    every(Duration::from_secs(interval), move || {
        let service = service.clone();
        async move {
            match service.run_maintenance().await {
                Ok(r) if r.destroyed + r.rotated + r.failed > 0 => {
                    tracing::info!(destroyed = r.destroyed, rotated = r.rotated, failed = r.failed, "maintenance pass");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), "maintenance pass failed")
                }
            }
        }
    })
}

/// Prints where the server listens; in the dev setup, writes and prints an admin token.
#[allow(clippy::print_stdout, reason = "the banner is for the person who started the server")]
fn banner(settings: &Settings, addr: &str, dev_auth: bool, policies: &str) -> Result<(), String> {
    println!("Keyward listening on {addr}");
    println!("  database: {}", redacted(&settings.database_url));
    println!("  policies: {policies}");
    if dev_auth {
        let secret = dev::dev_secret(&settings.data_dir)?;
        let groups = ["admins".to_owned()];
        let spec = dev::TokenSpec {
            issuer: dev::DEV_ISSUER,
            audience: dev::DEV_AUDIENCE,
            sub: "admin",
            groups: &groups,
            ttl: chrono::Duration::days(30),
            service: false,
        };
        let path = settings.data_dir.join("admin.token");
        // One admin token: the one on file while it has a day left, else a new one (a token
        // minted at every start would leave a trail of valid 30-day admin tokens).
        let kept = std::fs::read_to_string(&path).ok().map(|t| t.trim().to_owned());
        if !kept.as_deref().is_some_and(|t| dev::admin_token_valid_for(&secret, t, chrono::Duration::days(1))) {
            let token = dev::mint(&secret, &spec)?;
            dev::write_private(&path, format!("{token}\n").as_bytes())?;
        }
        println!();
        println!("  DEV SETUP: generated secrets in {} — not for production.", settings.data_dir.display());
        println!("  Admin token (member of `admins`) written to {}", path.display());
        println!("  Try:");
        println!("    TOKEN=$(cat {})", path.display());
        println!(
            "    curl -s -X POST {addr}/v1/keys -H \"Authorization: Bearer $TOKEN\" \
             -H 'Content-Type: application/json' -d '{{\"namespace\":\"demo\"}}'"
        );
    }
    println!("Ready.");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(())
}

/// A database URL without its password.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((cred, host)) => {
                let user = cred.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:****@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
