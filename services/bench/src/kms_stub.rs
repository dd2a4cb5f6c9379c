//! S9's external KMS: a stub speaking the AWS KMS JSON protocol that answers after a fixed
//! delay, without cryptography, so that what S9 measures is how Keyward waits on a slow
//! backend (Little's law), not the stub.

use std::collections::BinaryHeap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const PREFIX: &[u8] = b"stub";

fn blob(field: &Value) -> Vec<u8> {
    field.as_str().and_then(|s| STANDARD.decode(s).ok()).unwrap_or_default()
}

fn answer(target: &str, body: &Value) -> Result<Value, (u16, &'static str)> {
    let key_id = body["KeyId"].as_str().unwrap_or_default();
    let bytes = body["NumberOfBytes"].as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(32);
    Ok(match target {
        "CreateKey" => {
            let id = uuid::Uuid::new_v4();
            json!({"KeyMetadata": {"KeyId": id.to_string(), "Arn": format!("arn:aws:kms:us-east-1:000000000000:key/{id}"),
                   "Enabled": true, "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled"}})
        }
        "Encrypt" => {
            let sealed = [PREFIX, &blob(&body["Plaintext"])].concat();
            json!({"CiphertextBlob": STANDARD.encode(sealed), "KeyId": key_id})
        }
        "Decrypt" => {
            let sealed = blob(&body["CiphertextBlob"]);
            let plaintext = sealed.strip_prefix(PREFIX).ok_or((400, "InvalidCiphertextException"))?;
            json!({"Plaintext": STANDARD.encode(plaintext), "KeyId": key_id})
        }
        "GenerateDataKey" => {
            let plaintext = vec![0x42u8; bytes];
            let sealed = [PREFIX, &plaintext].concat();
            json!({"Plaintext": STANDARD.encode(plaintext), "CiphertextBlob": STANDARD.encode(sealed), "KeyId": key_id})
        }
        "GenerateRandom" => json!({"Plaintext": STANDARD.encode(vec![0x42u8; bytes])}),
        _ => return Err((400, "UnsupportedOperationException")),
    })
}

/// Wakes each request at its deadline. Tokio's timer wheel ticks in whole milliseconds (a 1 ms
/// sleep lasts up to 2), so one thread waits on precise deadlines for all of them.
#[derive(Clone)]
struct Delayer {
    latency: Duration,
    tx: mpsc::Sender<(Instant, tokio::sync::oneshot::Sender<()>)>,
}

struct Due(Instant, tokio::sync::oneshot::Sender<()>);
impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.cmp(&self.0) // earliest first
    }
}

impl Delayer {
    fn start(latency: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<(Instant, tokio::sync::oneshot::Sender<()>)>();
        std::thread::spawn(move || {
            let mut heap = BinaryHeap::new();
            loop {
                let now = Instant::now();
                while heap.peek().is_some_and(|d: &Due| d.0 <= now) {
                    if let Some(Due(_, done)) = heap.pop() {
                        let _ = done.send(());
                    }
                }
                let next = match heap.peek() {
                    Some(d) => rx.recv_timeout(d.0.saturating_duration_since(now)),
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok((at, done)) => heap.push(Due(at, done)),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Self { latency, tx }
    }

    async fn wait(&self, arrived: Instant) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send((arrived + self.latency, done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn handle(delayer: web::Data<Delayer>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    delayer.wait(Instant::now()).await;
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("TrentService."))
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match answer(target, &body) {
        Ok(v) => HttpResponse::Ok().content_type("application/x-amz-json-1.1").body(v.to_string()),
        Err((status, code)) => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("application/x-amz-json-1.1")
            .body(json!({"__type": code, "message": code}).to_string()),
    }
}

/// Serves the stub on `listen` until killed.
#[allow(clippy::print_stdout, reason = "the harness reads the address from stdout")]
pub fn serve(listen: &str, latency: Duration) -> Result<(), String> {
    let delayer = Delayer::start(latency);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(delayer.clone())).default_service(web::post().to(handle))
        })
        .workers(1)
        .backlog(4096)
        .max_connections(100_000)
        .bind(listen)
        .map_err(|e| e.to_string())?;
        let addr = server.addrs().first().copied().ok_or("no address")?;
        println!("kms stub listening on http://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        server.run().await.map_err(|e| e.to_string())
    })
}
