//! [`Bridge`]: MCP on one side, a running `toka serve` on the other.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt as _};
use serde_json::{Value, json};
use toka_api::tools::{CallResponse, ToolList};

/// How long one `tools/call` waits by default for the call to end (approval included)
/// before it answers with the call's id and state.
pub const CALL_WAIT_SECS: u64 = 30;
/// The longest wait the server takes.
pub const MAX_CALL_WAIT_SECS: u64 = 120;

/// Why the bridge could not run.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The MCP session failed.
    #[error("MCP session: {0}")]
    Session(String),
}

/// An MCP server whose tools are those the token may call on a Toka server.
#[derive(Clone)]
pub struct Bridge {
    http: reqwest::Client,
    base: Arc<str>,
    token: Arc<str>,
    wait_secs: u64,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("server", &self.base)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// A bridge to the Toka server at `base` acting with `token`; a call waits up to
    /// `wait_secs` (at most [`MAX_CALL_WAIT_SECS`]) for its result.
    pub fn new(base: &str, token: &str, wait_secs: u64) -> Result<Self, BridgeError> {
        let wait_secs = wait_secs.min(MAX_CALL_WAIT_SECS);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(wait_secs + 15))
            .build()
            .map_err(|e| BridgeError::Client(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').into(),
            token: token.trim().into(),
            wait_secs,
        })
    }

    /// GET or POST `path`; the JSON body, or Toka's error as text.
    async fn request(&self, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(b) => self.http.post(&url).json(b),
            None => self.http.get(&url),
        };
        let response = request
            .bearer_auth(&*self.token)
            .send()
            .await
            .map_err(|e| format!("cannot reach the Toka server at {}: {e}", self.base))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!(
                "Toka refused ({} {}): {}",
                status.as_u16(),
                value["error"]["code"].as_str().unwrap_or("error"),
                value["error"]["message"].as_str().unwrap_or("no details")
            ))
        }
    }

    /// The tools the token may call, as MCP tools.
    pub async fn tools(&self) -> Result<Vec<Tool>, String> {
        let list: ToolList = serde_json::from_value(self.request("/v1/tools", None).await?)
            .map_err(|e| format!("unexpected /v1/tools answer: {e}"))?;
        Ok(list
            .tools
            .into_iter()
            .map(|t| {
                let schema = match t.input_schema {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                let description = if t.approval == "required" {
                    format!("{} (calls wait for approval)", t.description)
                } else {
                    t.description
                };
                Tool::new(t.name, description, Arc::new(schema))
            })
            .collect())
    }

    /// Calls tool `name` through Toka; the MCP result (an error result when Toka
    /// refused it or the tool failed).
    pub async fn call(&self, name: &str, arguments: Value) -> CallToolResult {
        let body = json!({"input": arguments, "wait_secs": self.wait_secs});
        let answer = match self
            .request(&format!("/v1/tools/{name}/calls"), Some(&body))
            .await
        {
            Ok(v) => v,
            Err(refusal) => return CallToolResult::error(vec![ContentBlock::text(refusal)]),
        };
        let call: CallResponse = match serde_json::from_value(answer) {
            Ok(c) => c,
            Err(e) => {
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "unexpected answer from Toka: {e}"
                ))]);
            }
        };
        let header = format!("Toka call {} ({}): {}", call.call, call.tool, call.status);
        match call.status.as_str() {
            "succeeded" => {
                let output = call
                    .result
                    .as_ref()
                    .map(|r| r["output"].clone())
                    .unwrap_or(Value::Null);
                let text = serde_json::to_string(&output).unwrap_or_default();
                CallToolResult::success(vec![ContentBlock::text(text)])
            }
            "awaiting_approval" | "ready" | "running" => {
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "{header}. It has not ended yet; an approver can run `toka approve {}` (or deny it), \
                 and its result can be read with `toka tool show {}`.",
                    call.call, call.call
                ))])
            }
            _ => {
                let why = call
                    .result
                    .as_ref()
                    .and_then(|r| r["error"].as_str().map(str::to_string))
                    .or(call.reason.clone())
                    .unwrap_or_default();
                CallToolResult::error(vec![ContentBlock::text(format!("{header}: {why}"))])
            }
        }
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("toka", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.tools()
            .await
            .map(ListToolsResult::with_all_items)
            .map_err(|e| ErrorData::internal_error(e, None))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name: Cow<'_, str> = request.name;
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        Ok(self.call(&name, arguments).await.into())
    }
}

/// Serves `bridge` over stdin/stdout until the client closes the session.
pub async fn serve_stdio(bridge: Bridge) -> Result<(), BridgeError> {
    let service = bridge
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| BridgeError::Session(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| BridgeError::Session(e.to_string()))?;
    Ok(())
}
