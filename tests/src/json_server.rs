//! A tiny HTTP server for a JSON document that can change (a JWKS, an OpenID Provider's
//! metadata), answering every path with it and counting requests per path.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The server; it runs until the test process ends.
#[derive(Debug)]
pub struct JsonServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The document served.
    pub body: Arc<Mutex<String>>,
    /// The paths asked for, in order.
    pub hits: Arc<Mutex<Vec<String>>>,
    /// Requests served.
    pub count: Arc<AtomicUsize>,
}

impl JsonServer {
    /// Starts serving `body`.
    pub fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (b, h, c) = (body.clone(), hits.clone(), count.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                        break;
                    }
                }
                h.lock().unwrap().push(path);
                c.fetch_add(1, Ordering::SeqCst);
                let text = b.lock().unwrap().clone();
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Self { base, body, hits, count }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
