//! The console's OIDC sign-in: discovery at start, the public settings the page reads, the
//! Content-Security-Policy that lets the page reach the provider's token endpoint and nothing
//! else, and configurations that must refuse to start. (The browser flow itself runs in
//! `scripts/test-console.sh` against a provider stub.)

use keyward_e2e::{Db, JsonServer, Server, refuses_to_start};
use serde_json::{Value, json};

fn provider() -> JsonServer {
    let idp = JsonServer::start(String::new());
    *idp.body.lock().unwrap() = json!({
        "issuer": idp.base,
        "authorization_endpoint": idp.url("/authorize"),
        "token_endpoint": idp.url("/token"),
        "jwks_uri": idp.url("/jwks"),
    })
    .to_string();
    idp
}

fn config(dir: &std::path::Path, issuer: &str, console: &str) -> String {
    let secret = dir.join("hs256.secret");
    std::fs::write(&secret, "a shared secret of at least thirty-two bytes").unwrap();
    format!(
        "[[auth.issuers]]\nissuer = \"{issuer}\"\naudience = \"keyward\"\nalgorithms = [\"HS256\"]\nsecret_file = \"{}\"\n\n{console}",
        secret.display()
    )
}

async fn get(s: &Server, path: &str) -> (reqwest::header::HeaderMap, String) {
    let r = reqwest::get(format!("{}{path}", s.base)).await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let headers = r.headers().clone();
    (headers, r.text().await.unwrap())
}

fn connect_src(headers: &reqwest::header::HeaderMap) -> String {
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    csp.split(';').map(str::trim).find(|d| d.starts_with("connect-src")).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_learns_the_provider_from_discovery() {
    let idp = provider();
    let dir = tempfile::tempdir().unwrap();
    let console = "[console.oidc]\nissuer = \"ISSUER\"\nclient_id = \"keyward-console\"\nscopes = \"openid groups\"\n"
        .replace("ISSUER", &idp.base);
    let s = Server::start_with_config(Db::Sqlite, &config(dir.path(), &idp.base, &console), &[]).await;
    assert!(idp.hits.lock().unwrap().contains(&"/.well-known/openid-configuration".to_owned()));

    let (headers, body) = get(&s, "/ui/config.json").await;
    let settings: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        settings["oidc"],
        json!({
            "issuer": idp.base, "client_id": "keyward-console", "scopes": "openid groups", "token": "access_token",
            "authorization_endpoint": idp.url("/authorize"), "token_endpoint": idp.url("/token"),
        })
    );
    // The page may call this origin and the token endpoint's, nothing else.
    assert_eq!(connect_src(&headers), format!("connect-src 'self' {}", idp.base));
    let (headers, _) = get(&s, "/ui").await;
    assert_eq!(connect_src(&headers), format!("connect-src 'self' {}", idp.base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_provider_the_console_takes_pasted_tokens_only() {
    let s = Server::start(Db::Sqlite).await;
    let (headers, body) = get(&s, "/ui/config.json").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"oidc": null}));
    assert_eq!(connect_src(&headers), "connect-src 'self'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_provider_that_cannot_be_trusted_refuses_to_start() {
    let idp = provider();
    let dir = tempfile::tempdir().unwrap();
    let oidc = |issuer: &str, extra: &str| format!("[console.oidc]\nissuer = \"{issuer}\"\nclient_id = \"c\"\n{extra}");
    // Not one of the issuers whose tokens the server accepts.
    let e = refuses_to_start(&config(dir.path(), &idp.base, &oidc("https://other.example", "")));
    assert!(e.contains("not one of `[[auth.issuers]]`"), "{e}");
    // Discovery naming another issuer.
    let liar = JsonServer::start(json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a", "token_endpoint": "https://evil.example/t"}).to_string());
    let e = refuses_to_start(&config(dir.path(), &liar.base, &oidc(&liar.base, "")));
    assert!(e.contains("names issuer `https://evil.example`"), "{e}");
    // Plain HTTP to another host, and an unknown token kind.
    let e = refuses_to_start(&config(
        dir.path(),
        &idp.base,
        &oidc(
            &idp.base,
            "authorization_endpoint = \"http://idp.example/a\"\ntoken_endpoint = \"https://idp.example/t\"\n",
        ),
    ));
    assert!(e.contains("must use https"), "{e}");
    let e = refuses_to_start(&config(dir.path(), &idp.base, &oidc(&idp.base, "token = \"refresh_token\"\n")));
    assert!(e.contains("`console.oidc.token`"), "{e}");
    // A provider that does not answer.
    let e = refuses_to_start(&config(dir.path(), "http://127.0.0.1:9", &oidc("http://127.0.0.1:9", "")));
    assert!(e.contains("discovery at http://127.0.0.1:9/.well-known/openid-configuration failed"), "{e}");
}
