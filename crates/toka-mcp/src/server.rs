//! [`TokaMcp`]: the MCP server handler, over either [`Backend`].

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};
use toka_api::tools::{CallResponse, ToolList};

use crate::backend::Backend;

/// How long one `tools/call` waits by default for the call to end (approval included)
/// before it answers with the call's id and state.
pub const CALL_WAIT_SECS: u64 = 30;
/// The longest wait the server takes.
pub const MAX_CALL_WAIT_SECS: u64 = 120;

/// An MCP server whose tools are those a Toka token may call.
#[derive(Clone, Debug)]
pub struct TokaMcp {
    backend: Backend,
    /// The token of a stdio session; `None` on HTTP, where each request carries its own.
    token: Option<Arc<str>>,
    wait: Duration,
}

impl TokaMcp {
    /// A server over `backend`, with `token` for every request (stdio) or, with
    /// `None`, the bearer token of each HTTP request.
    pub fn new(backend: Backend, token: Option<&str>, wait_secs: u64) -> Self {
        Self {
            backend,
            token: token.map(|t| t.trim().into()),
            wait: Duration::from_secs(wait_secs.min(MAX_CALL_WAIT_SECS)),
        }
    }

    /// The token of this request.
    fn token(&self, context: &RequestContext<RoleServer>) -> Result<String, ErrorData> {
        self.token_of(&context.extensions)
    }

    /// The stdio token, or the bearer token of the HTTP request in `extensions`.
    fn token_of(&self, extensions: &rmcp::model::Extensions) -> Result<String, ErrorData> {
        if let Some(t) = &self.token {
            return Ok(t.to_string());
        }
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.headers.get(axum::http::header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .ok_or_else(|| ErrorData::invalid_request("no bearer token on the request", None))
    }
}

/// The MCP result of a committed call.
fn result_of(call: CallResponse) -> CallToolResult {
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
                "{header}. It has not ended yet; an approver can run `toka approve {}` (or deny \
                 it), and its result can be read with `toka tool show {}`.",
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

impl ServerHandler for TokaMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("toka", env!("CARGO_PKG_VERSION")))
    }

    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    /// A `subscriptions/listen` stream (2026-07-28): a change notification each time
    /// the token's tools change, until the client cancels it.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let token = self.token(context.request_context())?;
        let sink = context.sink().clone();
        let watching = async {
            crate::changes::watch_tools(
                &self.backend,
                &token,
                || true,
                || {
                    let sink = sink.clone();
                    async move { sink.notify_tool_list_changed().await.is_ok() }
                },
            )
            .await;
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = context.cancelled() => {}
            () = watching => {}
        }
        Ok(())
    }

    /// Clients of earlier protocol versions have no `subscriptions/listen`: they get
    /// `notifications/tools/list_changed` on the session, for as long as it is open.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let legacy = context
            .peer
            .peer_info()
            .is_some_and(|info| info.protocol_version != ProtocolVersion::V_2026_07_28);
        let Ok(token) = self.token_of(&context.extensions) else {
            return;
        };
        if !legacy {
            return;
        }
        let backend = self.backend.clone();
        let peer = context.peer;
        tokio::spawn(async move {
            let open = || !peer.is_transport_closed();
            crate::changes::watch_tools(&backend, &token, open, || {
                let peer = peer.clone();
                async move { peer.notify_tool_list_changed().await.is_ok() }
            })
            .await;
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let token = self.token(&context)?;
        let answer = self
            .backend
            .request(&token, Method::GET, "/v1/tools", None)
            .await
            .map_err(|e| ErrorData::invalid_request(e, None))?;
        let tools: ToolList = serde_json::from_value(answer).map_err(|e| {
            ErrorData::internal_error(format!("unexpected /v1/tools answer: {e}"), None)
        })?;
        let (_, permissions) = crate::ops::claimed(&token);
        let ops = crate::ops::all().into_iter().filter(|op| {
            op.permission
                .is_none_or(|p| permissions.iter().any(|held| held == p))
        });
        let ops = ops.map(|op| {
            let schema = match op.schema {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            Tool::new(op.name, op.description, Arc::new(schema))
        });
        Ok(ListToolsResult::with_all_items(
            tools
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
                .chain(ops)
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let token = self.token(&context)?;
        let input = Value::Object(request.arguments.unwrap_or_default());
        let result = if request.name.starts_with("toka.") {
            match crate::ops::run(&self.backend, &token, &request.name, &input).await {
                Ok(answer) => CallToolResult::success(vec![ContentBlock::text(
                    serde_json::to_string(&answer).unwrap_or_default(),
                )]),
                Err(refusal) => CallToolResult::error(vec![ContentBlock::text(refusal)]),
            }
        } else if let Err(e) = toka_types::check_tool_name(&request.name) {
            CallToolResult::error(vec![ContentBlock::text(format!("no such tool: {e}"))])
        } else {
            let body = json!({"input": input, "wait_secs": self.wait.as_secs()});
            let path = format!("/v1/tools/{}/calls", request.name);
            match self
                .backend
                .request(&token, Method::POST, &path, Some(&body))
                .await
            {
                Ok(answer) => match serde_json::from_value::<CallResponse>(answer) {
                    Ok(call) => result_of(call),
                    Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                        "unexpected answer from Toka: {e}"
                    ))]),
                },
                // A refusal is the tool's error, never a protocol failure.
                Err(refusal) => CallToolResult::error(vec![ContentBlock::text(refusal)]),
            }
        };
        Ok(result.into())
    }
}
