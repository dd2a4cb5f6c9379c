//! The load generator: raw HTTP/1.1 over keep-alive connections, closed loop to find the
//! maximum, open loop at a fixed rate for latency (measured from each request's intended
//! start, so a slow server cannot hide its queueing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One prepared request.
#[derive(Debug, Clone)]
pub struct Request {
    bytes: Arc<Vec<u8>>,
}

impl Request {
    /// A request with a JSON body (or none) and an optional bearer token.
    pub fn new(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Self {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| ("Authorization", a)).into_iter().collect();
        Self::with_headers(method, path, &headers, body)
    }

    /// A request with extra headers and a JSON body (or none).
    pub fn with_headers(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Self {
        let mut s = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
        for (name, value) in headers {
            s.push_str(&format!("{name}: {value}\r\n"));
        }
        match body {
            Some(b) => s.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len())),
            None => s.push_str("Content-Length: 0\r\n\r\n"),
        }
        Self { bytes: Arc::new(s.into_bytes()) }
    }
}

/// A keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

impl Conn {
    /// Connects.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(16 * 1024) })
    }

    /// Sends a request and reads the whole response; returns the status and body.
    pub async fn send(&mut self, req: &Request) -> std::io::Result<(u16, Vec<u8>)> {
        self.stream.write_all(&req.bytes).await?;
        self.buf.clear();
        let header_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|_| bad("non-UTF-8 headers"))?;
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
            })
            .unwrap_or(0);
        while self.buf.len() < header_end + len {
            self.read_more().await?;
        }
        Ok((status, self.buf[header_end..header_end + len].to_vec()))
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Responses received.
    pub answered: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Wall time of the measured window.
    pub elapsed: Duration,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    /// Responses refused by admission control (429).
    pub refused: u64,
    /// Latency of the refusals from their send, in microseconds.
    pub refused_latency: Histogram<u64>,
    /// Latency of the 2xx responses from their send, in microseconds.
    pub ok_latency: Histogram<u64>,
}

impl RunResult {
    /// Responses per second.
    pub fn rps(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// 2xx responses per second.
    pub fn goodput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Picks the request for the i-th send (lets a scenario mix requests).
pub type Picker = Arc<dyn Fn(u64) -> Request + Send + Sync>;

/// Closed loop: `concurrency` connections send back-to-back for `duration`.
pub async fn closed_loop(
    addr: SocketAddr,
    pick: Picker,
    concurrency: usize,
    duration: Duration,
) -> std::io::Result<RunResult> {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let pick = pick.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let req = pick(counter.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                let (status, _) = conn.send(&req).await?;
                tally.add(status, t.elapsed(), t.elapsed());
            }
            Ok::<_, std::io::Error>(tally)
        }));
    }
    gather(tasks, start).await
}

/// Open loop: `total` requests at `rate` per second, spread over `concurrency` connections.
pub async fn open_loop(
    addr: SocketAddr,
    pick: Picker,
    concurrency: usize,
    rate: f64,
    duration: Duration,
) -> std::io::Result<RunResult> {
    let total = (rate * duration.as_secs_f64()).max(1.0) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let pick = pick.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut tally = Tally::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let intended = start + Duration::from_secs_f64(i as f64 / rate);
                // On schedule: measure from the actual send (the timer's wake-up lag is the
                // client's, not the server's). Behind schedule: measure from the intended
                // start, so waiting for a free connection counts.
                let from = if intended > Instant::now() {
                    tokio::time::sleep_until(intended.into()).await;
                    Instant::now()
                } else {
                    intended
                };
                let sent = Instant::now();
                let (status, _) = conn.send(&pick(i)).await?;
                tally.add(status, from.elapsed(), sent.elapsed());
            }
            Ok::<_, std::io::Error>(tally)
        }));
    }
    gather(tasks, start).await
}

/// One connection's answers.
struct Tally {
    all: Histogram<u64>,
    ok: Histogram<u64>,
    refused: Histogram<u64>,
    answered: u64,
}

impl Tally {
    fn new() -> Self {
        Self { all: histogram(), ok: histogram(), refused: histogram(), answered: 0 }
    }

    /// `scheduled`: from when the request was due (open loop) or sent; `served`: from when it
    /// was sent, the server's share alone (the per-status histograms).
    fn add(&mut self, status: u16, scheduled: Duration, served: Duration) {
        let us = |d: Duration| d.as_micros().max(1) as u64;
        let _ = self.all.record(us(scheduled));
        self.answered += 1;
        if (200..300).contains(&status) {
            let _ = self.ok.record(us(served));
        } else if status == 429 {
            let _ = self.refused.record(us(served));
        }
    }
}

type TaskOut = std::io::Result<Tally>;

async fn gather(tasks: Vec<tokio::task::JoinHandle<TaskOut>>, start: Instant) -> std::io::Result<RunResult> {
    let mut total = Tally::new();
    for t in tasks {
        let one = t.await.map_err(|e| std::io::Error::other(e.to_string()))??;
        let _ = total.all.add(&one.all);
        let _ = total.ok.add(&one.ok);
        let _ = total.refused.add(&one.refused);
        total.answered += one.answered;
    }
    Ok(RunResult {
        answered: total.answered,
        ok: total.ok.len(),
        elapsed: start.elapsed(),
        latency: total.all,
        refused: total.refused.len(),
        refused_latency: total.refused,
        ok_latency: total.ok,
    })
}
