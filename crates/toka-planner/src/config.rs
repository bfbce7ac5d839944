//! [`PlannerConfig`]: the `[planner]` section of `toka.toml`.
//!
//! ```toml
//! [planner]
//! base_url = "http://127.0.0.1:11434/v1"   # any OpenAI-compatible Chat Completions API
//! model = "llama3.1"
//! api_key_env = "OPENAI_API_KEY"           # the *name* of the variable; never the key
//! timeout_ms = 60000                       # one request
//! max_retries = 4                          # 429, 5xx, timeouts; then the task fails
//! max_steps = 20                           # model steps per task
//! temperature = 0.0
//! system_prompt = "You are a careful planner…"
//! ```

use serde::Deserialize;

/// Longest wait for one model request.
pub const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Most retries of one request.
pub const MAX_RETRIES: u32 = 10;

/// Why `[planner]` is not usable.
#[derive(Debug, thiserror::Error)]
#[error("[planner] in toka.toml: {0}")]
pub struct PlannerConfigError(pub String);

/// `[planner]`, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannerConfig {
    /// The API's base URL, up to `/v1` (requests go to `{base_url}/chat/completions`).
    pub base_url: String,
    /// The model to ask.
    pub model: String,
    /// The name of the environment variable holding the API key (none: no key sent).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Timeout of one request, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Retries of one request after a 429, a 5xx, a timeout or a dropped connection.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Model steps one task may take; then it fails.
    #[serde(default = "default_steps")]
    pub max_steps: u32,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: f64,
    /// The system prompt.
    #[serde(default = "default_prompt")]
    pub system_prompt: String,
}

fn default_timeout() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    4
}
fn default_steps() -> u32 {
    20
}
fn default_prompt() -> String {
    "You are a planner agent working through Toka. Use the tools you are given to do \
     the task; every call is checked against your capability token and recorded. When \
     the task is done, call toka_finish with your answer."
        .into()
}

impl PlannerConfig {
    /// `[planner]` as written in `toka.toml`; `None` when the section is absent.
    pub fn from_table(table: &toml::Table) -> Result<Option<Self>, PlannerConfigError> {
        if table.is_empty() {
            return Ok(None);
        }
        let config: Self = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| PlannerConfigError(e.message().to_string()))?;
        config.check()?;
        Ok(Some(config))
    }

    /// Checks every bound.
    pub fn check(&self) -> Result<(), PlannerConfigError> {
        let bad = |m: String| Err(PlannerConfigError(m));
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return bad(format!(
                "base_url {:?} must start with http:// or https://",
                self.base_url
            ));
        }
        if self.model.is_empty()
            || self.model.chars().count() > toka_types::limits::MAX_MODEL_NAME_CHARS
        {
            return bad("model must be 1 to 128 characters".into());
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return bad(format!(
                "timeout_ms is {}, must be 1 to {MAX_TIMEOUT_MS}",
                self.timeout_ms
            ));
        }
        if self.max_retries > MAX_RETRIES {
            return bad(format!(
                "max_retries is {}, at most {MAX_RETRIES}",
                self.max_retries
            ));
        }
        let most = toka_types::limits::MAX_MODEL_STEPS_PER_TASK;
        if !(1..=most).contains(&self.max_steps) {
            return bad(format!(
                "max_steps is {}, must be 1 to {most}",
                self.max_steps
            ));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad(format!(
                "temperature is {}, must be 0 to 2",
                self.temperature
            ));
        }
        if self.system_prompt.len() > 64 * 1024 {
            return bad("system_prompt is over 64 KiB".into());
        }
        if let Some(var) = &self.api_key_env
            && std::env::var_os(var).is_none()
        {
            return bad(format!(
                "api_key_env names {var}, which is not set in the environment"
            ));
        }
        Ok(())
    }

    /// The API key, read from the environment variable named by `api_key_env`.
    pub fn api_key(&self) -> Option<String> {
        self.api_key_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
    }
}
