//! OTLP export: the spans of a request reach a collector with the trace id of its audit record
//! and of its `traceparent` response header.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward_e2e::{Db, Server, b64};
use serde_json::{Value, json};

/// Accepts OTLP/HTTP JSON posts and keeps their bodies.
fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(v) = serde_json::from_slice::<Value>(&body)
            {
                kept.lock().unwrap().push(v);
            }
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        }
    });
    (url, bodies)
}

/// (trace id, span name) of every exported span.
fn spans(bodies: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in bodies {
        for rs in b["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push((
                        s["traceId"].as_str().unwrap_or("").to_ascii_lowercase(),
                        s["name"].as_str().unwrap_or("").to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn spans_reach_an_otlp_collector_with_the_audit_trace_id() {
    let (url, bodies) = collector();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let s = Server::start_with_env(Db::Sqlite, &[], &env).await;
    let key = s.create_key("traced").await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = s
        .call_with(
            "POST",
            &format!("/v1/keys/{key}/encrypt"),
            &s.admin,
            Some(json!({"plaintext": b64(b"x")})),
            &[("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))],
        )
        .await;
    assert_eq!(r.status, 200);
    let header = r.headers.get("traceparent").unwrap().to_str().unwrap().to_owned();
    assert!(header.contains(trace), "{header}");
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(records.last().unwrap().trace_id, trace);
    let want = ["Encrypt", "authenticate", "authorize", "backend", "audit_commit"];
    let mut seen = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = spans(&bodies.lock().unwrap()).into_iter().filter(|(t, _)| t == trace).map(|(_, n)| n).collect();
        if want.iter().all(|w| seen.iter().any(|n| n == w)) {
            break;
        }
    }
    for w in want {
        assert!(seen.iter().any(|n| n == w), "span {w} with trace {trace} not exported; got {seen:?}");
    }
}
