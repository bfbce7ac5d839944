//! The HTTP API of Toka: a thin layer over [`toka_runtime::Runtime`].
//!
//! Everything under `/v1`, the bearer token is the capability:
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/messages` | submit a message; 200 once its events are durable |
//! | `GET /v1/events?from&limit` | committed events by range |
//! | `GET /v1/events/stream?from` | Server-Sent Events, resumable with `Last-Event-ID` |
//! | `GET /v1/agents`, `/v1/agents/{id}` | the agent tree, one agent |
//! | `GET /v1/tasks?agent&state` | tasks |
//! | `POST /v1/tasks/claim-next` | claim the oldest ready task, waiting for one |
//! | `GET /v1/state` | head `seq`, chain and state digests |
//! | `POST /v1/tokens` | issue a token attenuated from the bearer's (a `token.issued` event) |
//! | `POST /v1/tokens/renew` | renew the bearer's own token (same grant, fresh expiry) |
//! | `POST /v1/tokens/root` | a root token for a proof of the node's signing key |
//! | `GET /v1/checkpoints/latest` | the newest signed checkpoint and the public key |
//! | `GET /v1/overview` | head, checkpoint check, commit rates, queue depth |
//! | `GET /v1/agents/{id}/activity` | the newest events concerning one agent |
//! | `/healthz`, `/readyz`, `/metrics`, `/openapi.json` | operations |
//!
//! Reads only return what the token's scope covers. Errors are JSON:
//! `{"error": {"code": "...", "message": "..."}}`. The OpenAPI document is generated
//! from the handlers ([`openapi`]), so it cannot drift from the routes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod activity;
pub mod auth;
pub mod claim;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod overview;
pub mod query;
pub mod resolve;
pub mod schema;
pub mod state;
pub mod tokens;
pub mod tools;
pub mod transcript;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::AppState;

#[derive(OpenApi)]
#[openapi(info(
    title = "Toka OS API",
    description = "Capability-authorised, hash-chained agent kernel."
))]
struct ApiDoc;

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::submit))
        .routes(routes!(handlers::events))
        .routes(routes!(handlers::stream))
        .routes(routes!(handlers::agents))
        .routes(routes!(handlers::agent))
        .routes(routes!(handlers::tasks))
        .routes(routes!(claim::claim_next))
        .routes(routes!(handlers::state))
        .routes(routes!(tokens::mint_token))
        .routes(routes!(tokens::renew_token))
        .routes(routes!(tokens::root_token))
        .routes(routes!(tokens::budget))
        .routes(routes!(transcript::transcript))
        .routes(routes!(activity::activity))
        .routes(routes!(handlers::latest_checkpoint))
        .routes(routes!(overview::overview))
        .routes(routes!(tools::list_tools))
        .routes(routes!(tools::call_tool))
        .routes(routes!(tools::get_call))
        .routes(routes!(tools::approvals))
        .routes(routes!(tools::decide))
        .routes(routes!(handlers::healthz))
        .routes(routes!(handlers::readyz))
        .routes(routes!(handlers::metrics))
}

fn with_security(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let scheme = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build(),
    );
    api.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", scheme);
    api
}

/// The OpenAPI document, generated from the same route list the router serves and
/// completed with the request schemas and error statuses of [`schema`].
pub fn openapi() -> serde_json::Value {
    document(api_router().split_for_parts().1)
}

fn document(api: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(with_security(api)).unwrap_or_default();
    schema::complete(&mut doc);
    doc
}

/// The router: every route, the body limit, and `/openapi.json`.
pub fn router(app: AppState, max_body_bytes: usize) -> Router {
    let (router, api) = api_router().split_for_parts();
    let mut doc = document(api);
    let tools: Vec<(String, serde_json::Value)> = app.runtime.read(|s| {
        s.tools()
            .tools()
            .filter(|t| !t.retired)
            .map(|t| (t.spec.name.clone(), t.spec.input_schema.clone()))
            .collect()
    });
    schema::per_tool(&mut doc, &tools);
    let doc = serde_json::to_string_pretty(&doc).unwrap_or_default();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    doc,
                )
            }),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(app)
}

/// Unknown routes answer a JSON error like every other refusal.
async fn no_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!(
        "no route {}; the routes are listed in /openapi.json",
        uri.path()
    ))
}

/// A known route asked with a method it does not take.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see /openapi.json",
            uri.path()
        ),
    )
}

/// Serves `router` on `listener` until `shutdown` resolves (then finishes in-flight
/// requests).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
