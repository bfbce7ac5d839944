//! `http.fetch`: GET or POST to hosts on the allowlist only.
//!
//! The first URL and every redirect target are checked against the allowlist (scheme
//! `http` or `https`, host, and port if the entry names one); proxies from the
//! environment are ignored, so the request goes where the URL says. The whole fetch
//! has a timeout and the body is read up to a cap.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use toka_types::{ApprovalPolicy, RetryPolicy};

use crate::config::HttpConfig;
use crate::{Tool, ToolContext, ToolError, ToolInfo};

/// Longest URL accepted.
const MAX_URL_CHARS: usize = 2048;
/// Largest request body, in bytes.
const MAX_REQUEST_BODY_CHARS: usize = 256 * 1024;
/// Request headers an input may not set.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Hosts `http.fetch` may reach.
#[derive(Debug, Clone)]
pub(crate) struct Allowlist(Vec<(String, Option<u16>)>);

impl Allowlist {
    pub(crate) fn new(entries: &[String]) -> Self {
        Self(
            entries
                .iter()
                .map(|e| {
                    let e = e.to_ascii_lowercase();
                    match e
                        .rsplit_once(':')
                        .and_then(|(h, p)| Some((h, p.parse().ok()?)))
                    {
                        Some((host, port)) => {
                            (host.trim_matches(['[', ']']).to_string(), Some(port))
                        }
                        None => (e.trim_matches(['[', ']']).to_string(), None),
                    }
                })
                .collect(),
        )
    }

    /// Why `url` may not be fetched, or `None` if it may.
    pub(crate) fn refuses(&self, url: &reqwest::Url) -> Option<String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Some(format!("scheme {:?} is not http or https", url.scheme()));
        }
        let Some(host) = url.host_str() else {
            return Some("the URL has no host".into());
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let port = url.port_or_known_default();
        let allowed = self
            .0
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| Some(p) == port));
        if allowed {
            None
        } else {
            Some(format!(
                "{host}{} is not on the allowlist ([tools.http] allow_hosts)",
                port.map(|p| format!(":{p}")).unwrap_or_default()
            ))
        }
    }
}

/// `http.fetch`.
pub(crate) struct HttpFetch {
    client: reqwest::Client,
    allow: Arc<Allowlist>,
    config: HttpConfig,
}

impl HttpFetch {
    pub(crate) fn new(config: &HttpConfig) -> Result<Self, String> {
        let allow = Arc::new(Allowlist::new(&config.allow_hosts));
        let policy_allow = Arc::clone(&allow);
        let max_redirects = config.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                let n = attempt.previous().len();
                return attempt.error(format!("more than {max_redirects} redirects ({n})"));
            }
            match policy_allow.refuses(attempt.url()) {
                None => attempt.follow(),
                Some(why) => {
                    let why = format!("redirect to {} refused: {why}", attempt.url());
                    attempt.error(why)
                }
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        // Name the provider: with two rustls providers in one build the implicit
        // default panics at first use.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .redirect(policy)
            .no_proxy()
            .timeout(Duration::from_millis(config.timeout_ms))
            .use_preconfigured_tls(tls)
            .user_agent(concat!("toka-tools/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            client,
            allow,
            config: config.clone(),
        })
    }
}

/// An error with its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[async_trait]
impl Tool for HttpFetch {
    fn info(&self) -> ToolInfo {
        ToolInfo {
            name: "http.fetch".into(),
            description: format!(
                "Fetch a URL with GET or POST. Only these hosts: {}. At most {} bytes of the body are returned.",
                self.config.allow_hosts.join(", "),
                self.config.max_response_bytes
            ),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": MAX_URL_CHARS},
                    "method": {"enum": ["GET", "POST"]},
                    "body": {"type": "string", "maxLength": MAX_REQUEST_BODY_CHARS},
                    "headers": {
                        "type": "object",
                        "maxProperties": 16,
                        "additionalProperties": {"type": "string", "maxLength": 1024}
                    }
                },
                "required": ["url"],
                "additionalProperties": false
            }),
            approval: ApprovalPolicy::Never,
            // One tool for GET and POST: a POST may not be safe to repeat.
            retry: RetryPolicy::AtMostOnce,
            timeout_ms: self.config.timeout_ms.saturating_add(1000),
        }
    }

    async fn call(&self, input: Value, _ctx: &ToolContext) -> Result<Value, ToolError> {
        let raw = input.get("url").and_then(Value::as_str).unwrap_or_default();
        let url = reqwest::Url::parse(raw)
            .map_err(|e| ToolError::new(format!("invalid URL {raw:?}: {e}")))?;
        if let Some(why) = self.allow.refuses(&url) {
            return Err(ToolError::new(format!("{url} refused: {why}")));
        }
        let post = input.get("method").and_then(Value::as_str) == Some("POST");
        let mut request = if post {
            self.client.post(url.clone())
        } else {
            self.client.get(url.clone())
        };
        if let Some(Value::Object(headers)) = input.get("headers") {
            for (name, value) in headers {
                if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(ToolError::new(format!("header {name:?} may not be set")));
                }
                request = request.header(name, value.as_str().unwrap_or_default());
            }
        }
        if let Some(body) = input.get("body").and_then(Value::as_str) {
            request = request.body(body.to_string());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| ToolError::new(format!("fetching {url} failed: {}", chain(&e))))?;
        let status = response.status().as_u16();
        let final_url = response.url().to_string();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let cap = usize::try_from(self.config.max_response_bytes).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ToolError::new(format!("reading {url} failed: {}", chain(&e))))?
        {
            let room = cap - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(json!({
            "status": status,
            "url": final_url,
            "content_type": content_type,
            "body": String::from_utf8_lossy(&body),
            "bytes": body.len(),
            "truncated": truncated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matches_host_and_port() {
        let allow = Allowlist::new(&["api.example.com".into(), "127.0.0.1:8080".into()]);
        let ok = |u: &str| allow.refuses(&reqwest::Url::parse(u).unwrap()).is_none();
        assert!(ok("https://api.example.com/x"));
        assert!(
            ok("http://API.example.com:9999/x"),
            "no port in the entry: any port"
        );
        assert!(ok("http://127.0.0.1:8080/"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("http://api.example.com.evil.test/"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("ftp://api.example.com/"));
    }
}
