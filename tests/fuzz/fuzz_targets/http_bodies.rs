//! Every operation's request body through the whole REST application in process (routing,
//! size limits, JSON parsing, validation, the domain on in-memory ports): whatever the body, the
//! answer is never a 5xx and never a panic, and every error is a problem document with a
//! stable `code`.
#![no_main]

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::MessageBody;
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{EncodingKey, Header};
use keyward_api::AppState;
use keyward_api::admission::Admission;
use keyward_api::auth::{Authenticator, Issuer};
use keyward_core::testing::{Harness, RuleAuthorizer};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-32";

type Call = Rc<dyn Fn(actix_http::Request) -> LocalBoxFuture<'static, (u16, Vec<u8>)>>;

struct App {
    runtime: actix_rt::Runtime,
    call: Call,
    routes: Vec<(String, String)>,
    token: String,
}

async fn call_of<S, B>(service: S) -> Call
where
    S: actix_web::dev::Service<actix_http::Request, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>
        + 'static,
    B: MessageBody + 'static,
{
    let service = Rc::new(service);
    Rc::new(move |req| {
        let service = service.clone();
        Box::pin(async move {
            let resp = actix_web::test::call_service(&*service, req).await;
            let status = resp.status().as_u16();
            (status, actix_web::test::read_body(resp).await.to_vec())
        })
    })
}

fn app() -> App {
    let runtime = actix_rt::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let harness = Harness::new(RuleAuthorizer::allow_all());
    let issuer = Issuer::hs256("https://fuzz.example", "keyward", "groups", &Zeroizing::new(SECRET.to_vec()), 0)
        .unwrap_or_else(|e| panic!("{e}"));
    let state = AppState {
        service: harness.service.clone(),
        auth: Arc::new(Authenticator::new(vec![issuer])),
        aws: Arc::default(),
        metrics: None,
        admission: Admission::new(64, std::time::Duration::from_millis(5)),
        console: Arc::default(),
        xks: Arc::default(),
    };
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://fuzz.example", "aud": "keyward", "sub": "fuzz", "groups": ["admins"],
        "iat": now, "nbf": now - 10, "exp": now + 86_400,
    });
    let token = jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET))
        .unwrap_or_else(|e| panic!("{e}"));
    let call = runtime.block_on(async { call_of(actix_web::test::init_service(keyward_api::app(state)).await).await });
    // One key, so operations on a key reach the domain.
    let create = actix_web::test::TestRequest::post()
        .uri("/v1/keys")
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"namespace":"fuzz","alias":"alias/fuzz"}"#)
        .to_request();
    let (status, body) = runtime.block_on(call(create));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let key: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key_id = key["key_id"].as_str().unwrap_or_default().to_owned();
    // Every operation of the API document, its path parameters filled in.
    let doc: serde_json::Value = serde_json::from_str(&keyward_api::openapi_json()).unwrap_or_default();
    let mut routes = Vec::new();
    for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
        for method in methods.as_object().into_iter().flatten().map(|(m, _)| m.to_uppercase()) {
            let path = path
                .replace("{key}", &key_id)
                .replace("{name}", "alias/fuzz")
                .replace("{alias}", "alias/fuzz")
                .replace("{grant_id}", "0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f")
                .replace("{access_key_id}", "KWAAAAAAAAAAAAAAAAAA");
            routes.push((method, path));
        }
    }
    assert!(routes.len() > 20, "the API document lists the operations");
    App { runtime, call, routes, token }
}

thread_local! {
    static APP: App = app();
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    APP.with(|app| {
        let (method, path) = &app.routes[usize::from(pick) % app.routes.len()];
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap_or(actix_web::http::Method::POST);
        let req = actix_web::test::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("authorization", format!("Bearer {}", app.token)))
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_vec())
            .to_request();
        let (status, answer) = app.runtime.block_on((app.call)(req));
        assert!(status < 500, "{path}: {status} {}", String::from_utf8_lossy(&answer));
        if status >= 400 {
            let problem: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
            assert!(problem["code"].is_string(), "{path}: {status} without a code: {}", String::from_utf8_lossy(&answer));
        }
    });
});
