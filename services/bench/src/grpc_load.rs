//! S13's Kubernetes half: KMS v2 Encrypt of a 32-byte seed over the plugin's unix socket, from
//! `concurrency` tasks sharing one HTTP/2 connection (as kube-apiserver does), closed loop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use keyward_kubernetes::proto::EncryptRequest;
use keyward_kubernetes::proto::key_management_service_client::KeyManagementServiceClient;
use tonic::transport::Channel;

/// What a run measured.
#[derive(Debug)]
pub struct GrpcRun {
    /// Answers per second.
    pub rps: f64,
    /// Successful answers.
    pub ok: u64,
    /// All answers.
    pub answered: u64,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
}

async fn connect(socket: PathBuf) -> Result<KeyManagementServiceClient<Channel>, String> {
    let channel = tonic::transport::Endpoint::try_from("http://localhost")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
            }
        }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(KeyManagementServiceClient::new(channel))
}

/// Encrypts back-to-back from `concurrency` tasks for `duration`.
pub async fn encrypt_loop(socket: PathBuf, concurrency: usize, duration: Duration) -> Result<GrpcRun, String> {
    let client = connect(socket).await?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for t in 0..concurrency {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let (mut ok, mut answered, mut i) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let uid = format!("bench-{t}-{i}");
                i += 1;
                let answer = client.encrypt(EncryptRequest { plaintext: vec![0x5A; 32], uid }).await;
                let _ = h.record(sent.elapsed().as_micros().max(1) as u64);
                answered += 1;
                ok += u64::from(answer.is_ok());
            }
            Ok::<_, String>((h, ok, answered))
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let (mut ok, mut answered) = (0, 0);
    for task in tasks {
        let (h, o, a) = task.await.map_err(|e| e.to_string())??;
        let _ = latency.add(&h);
        ok += o;
        answered += a;
    }
    Ok(GrpcRun { rps: answered as f64 / start.elapsed().as_secs_f64().max(1e-9), ok, answered, latency })
}
