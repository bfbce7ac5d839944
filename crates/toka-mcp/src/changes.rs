//! Telling an MCP client when the tools its token may call change: a tool registered
//! or retired (a downstream server went down or came back, a node offered new ones),
//! or the token revoked. The watcher long-polls `GET /v1/tools?version=…`, so it
//! costs one waiting request per listening client, not a poll loop.
//!
//! Clients on protocol 2026-07-28 ask for it with `subscriptions/listen`; older
//! clients get `notifications/tools/list_changed` on their session.

use std::time::Duration;

use axum::http::Method;

use crate::backend::Backend;

/// How long one long-poll waits for a change before it asks again.
pub(crate) const LIST_WAIT_SECS: u64 = 25;
/// Pause before asking again when Toka could not be reached.
const RETRY: Duration = Duration::from_secs(2);

/// Watches the tools `token` may call and awaits `notify` after each change, until
/// `notify` answers `false` or `wanted` does (the client is gone). A refused token
/// (revoked, expired) is one last change; then it returns.
pub(crate) async fn watch_tools<F, Fut>(
    backend: &Backend,
    token: &str,
    wanted: impl Fn() -> bool,
    mut notify: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut version: Option<String> = None;
    while wanted() {
        let path = match &version {
            Some(v) => format!("/v1/tools?wait_secs={LIST_WAIT_SECS}&version={v}"),
            None => "/v1/tools".to_string(),
        };
        match backend
            .request_status(token, Method::GET, &path, None)
            .await
        {
            Ok(answer) => {
                // Only a fingerprint goes back into the query.
                let now = answer["version"]
                    .as_str()
                    .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(str::to_string);
                if version.is_some() && now != version && !notify().await {
                    return;
                }
                version = now;
            }
            Err((Some(401 | 403), refusal)) => {
                tracing::info!(%refusal, "the token may call no tools any more");
                notify().await;
                return;
            }
            Err((_, refusal)) => {
                tracing::debug!(%refusal, "tool list not read; asking again");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
