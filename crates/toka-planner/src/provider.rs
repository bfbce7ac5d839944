//! [`ChatClient`]: one OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama,
//! vLLM, a llama.cpp server), with the retries a provider needs: a 429 waits for its
//! `Retry-After` (at most a minute), a 5xx, a timeout or a dropped connection waits a
//! doubling pause; a 4xx other than 429 is not retried. Every wait is bounded.
//!
//! What it is not: the record. The planner commits what this returns before acting.

use std::time::Duration;

use serde_json::Value;

use crate::config::PlannerConfig;

/// Largest response body read, in bytes (a recorded step holds it whole).
pub const MAX_RESPONSE_BYTES: usize = 768 * 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(8);

/// Why the model gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the request (a 4xx other than 429): not retried.
    #[error("the model provider refused the request ({status}): {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// No answer after every retry.
    #[error("the model provider gave no answer after {attempts} attempts; last: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// One answer, with the hash of the exact request body that was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// BLAKE3 (hex) of the request body.
    pub request_hash: String,
    /// The response body.
    pub response: Value,
    /// How many attempts it took.
    pub attempts: u32,
}

/// A Chat Completions endpoint.
#[derive(Debug, Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    retries: u32,
}

impl ChatClient {
    /// The endpoint of `config`.
    pub fn new(config: &PlannerConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(10_000)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            http,
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            key: config.api_key(),
            retries: config.max_retries,
        })
    }

    /// Sends `request` and returns the provider's answer, retrying what is worth it.
    pub async fn complete(&self, request: &Value) -> Result<Answer, ProviderError> {
        let body = serde_json::to_vec(request).unwrap_or_default();
        let request_hash = blake3::hash(&body).to_hex().to_string();
        let mut pause = FIRST_PAUSE;
        let mut last = String::new();
        let attempts = self.retries + 1;
        for attempt in 1..=attempts {
            let wait = match self.once(&body).await {
                Ok(response) => {
                    return Ok(Answer {
                        request_hash,
                        response,
                        attempts: attempt,
                    });
                }
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Retry { why, after }) => {
                    tracing::warn!(attempt, error = %why, "model request failed; retrying");
                    last = why;
                    after.unwrap_or(pause)
                }
            };
            if attempt < attempts {
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
        Err(ProviderError::Unavailable { attempts, last })
    }

    async fn once(&self, body: &[u8]) -> Result<Value, Failure> {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let retry = |why: String| Failure::Retry { why, after: None };
        let mut response = request.send().await.map_err(|e| {
            retry(if e.is_timeout() {
                "timed out".into()
            } else {
                format!("no connection: {e}")
            })
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(Failure::Refused(ProviderError::Refused {
                            status,
                            body: format!("the response is over {MAX_RESPONSE_BYTES} bytes"),
                        }));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(retry(format!("the response broke off: {e}"))),
            }
        }
        let text = || String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).into_owned();
        match status {
            200..=299 => serde_json::from_slice(&bytes)
                .map_err(|e| retry(format!("the response is not JSON: {e}"))),
            429 => Err(Failure::Retry {
                why: format!("429 Too Many Requests: {}", text()),
                after: retry_after,
            }),
            500..=599 => Err(retry(format!("{status}: {}", text()))),
            _ => Err(Failure::Refused(ProviderError::Refused {
                status,
                body: text(),
            })),
        }
    }
}

enum Failure {
    Refused(ProviderError),
    Retry {
        why: String,
        after: Option<Duration>,
    },
}
