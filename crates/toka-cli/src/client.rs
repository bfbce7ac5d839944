//! A small HTTP client for the Toka API.

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Remote;

/// The server refused a request: its status, the rule's code and its message (with
/// the next step, where there is one).
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The error code (`permission_denied`, `out_of_scope`, …).
    pub code: String,
    /// The server's message.
    pub message: String,
}

impl Refusal {
    /// What to do about it, when the refusal has an obvious next step.
    fn hint(&self) -> Option<&'static str> {
        if self.status == 401 && self.message.contains("expired") {
            return Some(
                "renew a token before it expires (`toka token renew`); once expired, ask its issuer for a new one",
            );
        }
        if self.status == 401 && self.message.contains("revoked") {
            return Some("a revoked token stays revoked: ask its issuer for a new one");
        }
        None
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server refused ({} {}): {}",
            self.status, self.code, self.message
        )?;
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

/// The server when neither a flag, the environment nor a profile names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// A client bound to a server and a token.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    idempotency_key: Option<String>,
}

impl Client {
    /// A client for `remote`; fails if no token is given.
    pub fn new(remote: &Remote) -> Result<Self> {
        let from_file = match &remote.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("cannot read the token file {}: {e}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        // The profile file is read only when a flag or the environment leaves a gap.
        let profile = if (from_file.is_none() && remote.token.is_none())
            || remote.server.is_none()
            || remote.profile.is_some()
        {
            crate::profile::load(remote.profile.as_deref())?
        } else {
            None
        };
        let token = from_file
            .or_else(|| remote.token.clone())
            .or_else(|| profile.as_ref().map(|p| p.token.clone()))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "no token: pass --token-file FILE or --token, set TOKA_TOKEN, or save a profile with `toka login` (`toka init` prints a token)"
                )
            })?;
        let server = remote
            .server
            .clone()
            .or_else(|| profile.map(|p| p.server))
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        Ok(Self {
            http: reqwest::Client::new(),
            base: server.trim_end_matches('/').to_string(),
            token,
            idempotency_key: remote.idempotency_key.clone(),
        })
    }

    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn handle<T: DeserializeOwned>(
        &self,
        response: reqwest::Result<reqwest::Response>,
    ) -> Result<T> {
        let response = response
            .map_err(|e| anyhow!("cannot reach {}: {e}; is `toka serve` running?", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(Refusal {
                status: status.as_u16(),
                code: body["error"]["code"]
                    .as_str()
                    .unwrap_or("error")
                    .to_string(),
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("no details")
                    .to_string(),
            }
            .into());
        }
        Ok(serde_json::from_value(body)?)
    }

    /// The id of the agent `reference` names: an id as it is; otherwise the server
    /// resolves an id prefix, a name or a path (`root/planner`) in the token's scope.
    pub async fn agent_id(&self, reference: &str) -> Result<String> {
        if reference.parse::<toka_types::EntityId>().is_ok() {
            return Ok(reference.to_string());
        }
        let mut url = reqwest::Url::parse(&format!("{}/v1/agents/", self.base))
            .map_err(|e| anyhow!("bad server URL {}: {e}", self.base))?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("bad server URL {}", self.base))?
            .pop_if_empty()
            .push(reference);
        let request = self.http.get(url).bearer_auth(&self.token);
        let agent: Value = self.handle(request.send().await).await?;
        agent["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server's answer names no agent: {agent}"))
    }

    /// GET `path` (with query).
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(query);
        self.handle(request.send().await).await
    }

    /// Every item of a paged list route (`{"items": [...], "next": ...}`), following
    /// `next` page by page (at most 1 000 pages of 1 000).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            items: Vec<T>,
            next: Option<String>,
        }
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", "1000".into()));
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let page: Page<T> = self.get(path, &q).await?;
            all.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
        anyhow::bail!("{path} has more than a million items; use the API's pages")
    }

    /// POST `body` as JSON to `path`.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(key) = &self.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.handle(request.send().await).await
    }

    /// Opens the event stream after `last` (the seq last seen; 0 for the whole log),
    /// resuming with `Last-Event-ID` as SSE clients do.
    pub async fn stream(&self, last: u64) -> Result<reqwest::Response> {
        let mut request = self
            .http
            .get(format!("{}/v1/events/stream", self.base))
            .bearer_auth(&self.token);
        request = if last == 0 {
            request.query(&[("from", 1)])
        } else {
            request.header("Last-Event-ID", last.to_string())
        };
        let response = request
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {}: {e}", self.base))?;
        if !response.status().is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            bail!(
                "server refused: {}",
                body["error"]["message"].as_str().unwrap_or("no details")
            );
        }
        Ok(response)
    }
}
