//! [`Backend`]: where the MCP server's tools come from and its calls go: a running
//! server over HTTP (the stdio bridge) or the runtime in this process (`/mcp`).
//!
//! Both ask the same questions the HTTP API answers (`toka_api::tools`), so an MCP
//! client sees exactly what the API would show the same token.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use toka_api::AppState;
use toka_api::auth::Caller;
use toka_api::tools::{CallResponse, ToolList, ToolView};

/// Where tools are listed and called.
#[derive(Clone)]
pub enum Backend {
    /// A running `toka serve`, over its HTTP API.
    Remote {
        /// The client.
        http: reqwest::Client,
        /// Its base URL.
        base: Arc<str>,
    },
    /// The runtime of this process.
    Local(AppState),
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

impl Backend {
    /// The tools `token` may call.
    pub async fn tools(&self, token: &str) -> Result<Vec<ToolView>, Refusal> {
        match self {
            Self::Remote { .. } => {
                let list: ToolList =
                    serde_json::from_value(self.request(token, "/v1/tools", None).await?)
                        .map_err(|e| format!("unexpected /v1/tools answer: {e}"))?;
                Ok(list.tools)
            }
            Self::Local(app) => {
                let caller = local_caller(app, token)?;
                Ok(toka_api::tools::visible_tools(app, &caller))
            }
        }
    }

    /// Calls `name` with `input` as `token`, waiting up to `wait` for the result.
    pub async fn call(
        &self,
        token: &str,
        name: &str,
        input: Value,
        wait: Duration,
    ) -> Result<CallResponse, Refusal> {
        match self {
            Self::Remote { .. } => {
                let body = json!({"input": input, "wait_secs": wait.as_secs()});
                let answer = self
                    .request(token, &format!("/v1/tools/{name}/calls"), Some(&body))
                    .await?;
                serde_json::from_value(answer)
                    .map_err(|e| format!("unexpected answer from Toka: {e}"))
            }
            Self::Local(app) => {
                let caller = local_caller(app, token)?;
                toka_api::tools::call_as(app, &caller, name, None, input, wait, None)
                    .await
                    .map_err(|e| refusal(e.status.as_u16(), e.code, &e.message))
            }
        }
    }

    async fn request(
        &self,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refusal> {
        let Self::Remote { http, base } = self else {
            return Err("not a remote backend".into());
        };
        let url = format!("{base}{path}");
        let request = match body {
            Some(b) => http.post(&url).json(b),
            None => http.get(&url),
        };
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("cannot reach the Toka server at {base}: {e}"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(refusal(
                status.as_u16(),
                value["error"]["code"].as_str().unwrap_or("error"),
                value["error"]["message"].as_str().unwrap_or("no details"),
            ))
        }
    }
}

fn refusal(status: u16, code: &str, message: &str) -> Refusal {
    format!("Toka refused ({status} {code}): {message}")
}

fn local_caller(app: &AppState, token: &str) -> Result<Caller, Refusal> {
    Caller::from_authorization(app, &format!("Bearer {token}"))
        .map_err(|e| refusal(e.status.as_u16(), e.code, &e.message))
}
