//! B0 and S1: a raw actix-web JSON echo, optionally behind Keyward's JWT verification.

use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use keyward_api::auth::Authenticator;

async fn echo(body: web::Json<serde_json::Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn echo_authenticated(
    auth: web::Data<Arc<Authenticator>>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    match auth.authenticate(&req).await {
        Ok(_) => HttpResponse::Ok().json(body.into_inner()),
        Err(_) => HttpResponse::Unauthorized().finish(),
    }
}

/// Serves `POST /echo` on `listen` with `workers` workers until killed.
#[allow(clippy::print_stdout, reason = "the harness reads the address from stdout")]
pub fn serve(listen: &str, workers: usize, auth: Option<Authenticator>) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let auth = auth.map(Arc::new);
        let server = HttpServer::new(move || {
            let app = App::new().app_data(web::JsonConfig::default().limit(1 << 20));
            match &auth {
                Some(a) => app.app_data(web::Data::new(a.clone())).route("/echo", web::post().to(echo_authenticated)),
                None => app.route("/echo", web::post().to(echo)),
            }
        })
        .workers(workers)
        .bind(listen)
        .map_err(|e| e.to_string())?;
        let addr = server.addrs().first().copied().ok_or("no address")?;
        println!("echo listening on http://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        server.run().await.map_err(|e| e.to_string())
    })
}
