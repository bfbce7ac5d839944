//! `/mcp` on `toka serve`: the streamable HTTP transport, with the bearer token checked
//! on every request. A request without a usable token gets 401 with
//! `WWW-Authenticate: Bearer` (the MCP authorization spec's bearer usage) and a JSON
//! error like the rest of the API. A POST body that is not JSON gets a JSON-RPC parse
//! error (400), one over 4 MiB a 413, before the MCP transport sees either.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use toka_api::AppState;
use toka_api::auth::Caller;

use crate::backend::Backend;

/// Largest request body `/mcp` reads (a tool input is at most 1 MiB of JSON).
const MAX_MCP_BODY_BYTES: usize = 4 * 1024 * 1024;
use crate::server::{CALL_WAIT_SECS, TokaMcp};

/// The `/mcp` service for the runtime of `app`, answering through `api` (the API
/// router of the same `app`). `allowed_hosts` are the `Host` header values accepted
/// (DNS-rebinding protection), e.g. the listen address.
pub fn http_service(app: AppState, api: axum::Router, allowed_hosts: Vec<String>) -> axum::Router {
    let backend = Backend::Local(api);
    let mut config = StreamableHttpServerConfig::default();
    config.allowed_hosts.extend(allowed_hosts);
    let service = StreamableHttpService::new(
        move || Ok(TokaMcp::new(backend.clone(), None, CALL_WAIT_SECS)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new()
        .fallback_service(service)
        .layer(axum::middleware::from_fn_with_state(app, require_bearer))
}

async fn require_bearer(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let refusal = match header_value {
        None => Some((
            "invalid_request",
            "missing Authorization: Bearer <token>".to_string(),
        )),
        Some(text) => match Caller::from_authorization(&app, &text) {
            Ok(_) => None,
            Err(e) => Some(("invalid_token", e.message)),
        },
    };
    match refusal {
        None if request.method() == axum::http::Method::POST => match json_body(request).await {
            Ok(request) => next.run(request).await,
            Err(response) => response,
        },
        None => next.run(request).await,
        Some((error, message)) => {
            let body =
                serde_json::json!({"error": {"code": "unauthenticated", "message": message}});
            let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            let challenge = format!("Bearer realm=\"toka\", error=\"{error}\"");
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            response
        }
    }
}

/// `request` with its body read and checked to be JSON, or the JSON-RPC error.
async fn json_body(request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_MCP_BODY_BYTES)
        .await
        .map_err(|_| {
            rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                format!("the request is over {MAX_MCP_BODY_BYTES} bytes"),
            )
        })?;
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            format!("parse error: the body is not JSON ({e})"),
        ));
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

fn rpc_error(status: StatusCode, code: i64, message: String) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    });
    (status, axum::Json(body)).into_response()
}
