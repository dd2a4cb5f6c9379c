//! Keyward's HTTP API: routes, handlers, request and response types, problem+json errors,
//! bearer authentication, and the OpenAPI document generated from the handlers.

pub mod admission;
pub mod auth;
pub mod aws;
pub mod console;
pub mod dto;
pub mod error;
mod handlers;
pub mod meta;
mod openapi_doc;
pub mod state;
pub mod xks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpRequest, HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

/// Largest request body read, in bytes. The largest legitimate body is a Decrypt or ReEncrypt
/// of the largest blob (`MAX_BLOB`, 7 KiB, about 10 KiB in base64) with a full encryption
/// context (8 KiB); larger bodies are refused (413) unread.
pub const MAX_BODY: usize = 64 * 1024;

fn routes(cfg: &mut ServiceConfig) {
    use handlers::{access_keys, aliases, approvals, audit, crypto, grants, health, import, keys, policy, signing};
    cfg.service(
        scope("/v1")
            // The router tries patterns in order, a regex each: the hot cryptographic paths first.
            .service(crypto::encrypt)
            .service(crypto::decrypt)
            .service(crypto::re_encrypt)
            .service(crypto::generate_data_key)
            .service(crypto::generate_data_key_without_plaintext)
            .service(crypto::generate_data_key_pair)
            .service(crypto::generate_data_key_pair_without_plaintext)
            .service(crypto::generate_random)
            .service(signing::sign)
            .service(signing::verify)
            .service(signing::get_public_key)
            .service(signing::generate_mac)
            .service(signing::verify_mac)
            // The design's first path for GenerateMac (the documented one is `/generate-mac`).
            .route("/keys/{key}/mac", web::post().to(signing::generate_mac_at))
            .service(import::get_parameters_for_import)
            .service(import::import_key_material)
            .service(import::delete_imported_key_material)
            .service(keys::create_key)
            .service(keys::list_keys)
            .service(keys::describe_key)
            .service(keys::update_key)
            .service(keys::enable_key)
            .service(keys::disable_key)
            .service(keys::schedule_key_deletion)
            .service(keys::cancel_key_deletion)
            .service(keys::rotate_key)
            .service(keys::list_key_versions)
            .service(keys::get_key_usage)
            .service(keys::get_namespace_usage)
            .service(keys::set_min_decryption_version)
            .service(aliases::create_alias)
            .service(aliases::delete_alias)
            .service(aliases::list_aliases)
            .service(grants::create_grant)
            .service(grants::list_grants)
            .service(grants::revoke_grant)
            .service(policy::authorize)
            .service(policy::get_policies)
            .service(policy::reload_policies)
            .service(audit::query_audit)
            .service(audit::verify_audit)
            .service(access_keys::create_access_key)
            .service(access_keys::list_access_keys)
            .service(access_keys::delete_access_key)
            .service(approvals::list_approvals)
            .service(approvals::get_approval)
            .service(approvals::approve)
            .service(approvals::reject),
    )
    .service(health::healthz)
    .service(health::readyz)
    .service(health::metrics);
}

fn base_document() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Keyward")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Key management: envelope encryption, key lifecycle, policy-checked and audited."))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc
}

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> OpenApi {
    let (_, api) = App::new().into_utoipa_app().openapi(base_document()).configure(routes).split_for_parts();
    openapi_doc::finish(api)
}

/// The OpenAPI document as pretty JSON with a trailing newline (the committed form).
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    let e = error::ApiError::new(
        keyward_core::Error::not_found(format!("route `{} {}`", req.method(), req.path())),
        meta::request_id(&req),
    );
    actix_web::ResponseError::error_response(&e)
}

/// The XKS proxy alone, for its own listener (`[xks] listen`): its paths, and `/healthz` for
/// load balancers. Anything else is XKS's 404.
pub fn xks_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .service(handlers::health::healthz)
        .service(web::resource("/{tail:.*}").guard(actix_web::guard::fn_guard(xks::is_xks_request)).to(xks::handle))
        .default_service(web::to(|req: HttpRequest| async move {
            xks::error::XksError::invalid_uri_path().response(&meta::request_id(&req))
        }))
        .wrap(actix_web::middleware::from_fn(admission::admit))
        .wrap(meta::AssignIds)
}

/// The application: every route, `/openapi.json`, `/docs`, ids on every response.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(base_document())
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .configure(routes)
        .split_for_parts();
    app.service(web::resource("/{tail:.*}").guard(actix_web::guard::fn_guard(xks::is_xks_request)).to(xks::handle))
        .service(
            web::resource("/")
                .guard(actix_web::guard::Post())
                .guard(actix_web::guard::fn_guard(aws::is_aws_request))
                .to(aws::handle),
        )
        .configure(console::routes)
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi_doc::finish(api)))
        .default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(admission::admit))
        .wrap(meta::AssignIds)
}
