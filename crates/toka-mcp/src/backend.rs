//! [`Backend`]: where the MCP server's requests go: a running `toka serve` over HTTP
//! (the stdio bridge) or the API router of this process (`/mcp`, stand-alone stdio).
//!
//! Either way a request is an HTTP API request, answered by the API's own code, so an
//! MCP client gets exactly what an HTTP client with the same token gets.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;
use tower::ServiceExt as _;

/// Largest API answer read back, in bytes (a call's output is at most 1 MiB of JSON).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Where requests go.
#[derive(Clone)]
pub enum Backend {
    /// A running `toka serve`, over its HTTP API.
    Remote {
        /// The client.
        http: reqwest::Client,
        /// Its base URL.
        base: Arc<str>,
    },
    /// The API router of this process.
    Local(axum::Router),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Remote { base, .. } => write!(f, "Remote({base})"),
            Self::Local(_) => f.write_str("Local"),
        }
    }
}

/// A refusal or failure, as the MCP client is told it.
pub type Refusal = String;

fn refusal(status: u16, body: &Value) -> Refusal {
    format!(
        "Toka refused ({status} {}): {}",
        body["error"]["code"].as_str().unwrap_or("error"),
        body["error"]["message"].as_str().unwrap_or("no details")
    )
}

impl Backend {
    /// `method path` with `body` as `token`: the JSON answer, or Toka's refusal.
    pub async fn request(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refusal> {
        self.request_status(token, method, path, body)
            .await
            .map_err(|(_, refusal)| refusal)
    }

    /// [`Backend::request`], with the HTTP status of a refusal (`None`: Toka was not
    /// reached).
    pub async fn request_status(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, (Option<u16>, Refusal)> {
        let unreachable = |e: String| (None, e);
        let (status, answer) = match self {
            Self::Remote { http, base } => {
                let mut request = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(token);
                if let Some(b) = body {
                    request = request.json(b);
                }
                let response = request.send().await.map_err(|e| {
                    unreachable(format!("cannot reach the Toka server at {base}: {e}"))
                })?;
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Self::Local(router) => {
                let mut request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"));
                let body = match body {
                    Some(b) => {
                        request = request.header(header::CONTENT_TYPE, "application/json");
                        Body::from(serde_json::to_vec(b).unwrap_or_default())
                    }
                    None => Body::empty(),
                };
                let request = request.body(body).map_err(|e| unreachable(e.to_string()))?;
                let response = router
                    .clone()
                    .oneshot(request)
                    .await
                    .map_err(|e| unreachable(format!("the API failed: {e}")))?;
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
                    .await
                    .map_err(|e| unreachable(format!("the API's answer could not be read: {e}")))?;
                (
                    status,
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                )
            }
        };
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err((Some(status), refusal(status, &answer)))
        }
    }
}
