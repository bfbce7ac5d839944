//! Toka's LLM planner: a hosted agent that works its task queue with a model over
//! the OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, llama.cpp), and
//! whose every model exchange is a fact in the log.
//!
//! * [`PlannerConfig`]: `[planner]` in `toka.toml` (endpoint, model, the *name* of the
//!   variable with the API key, timeout, retries, `max_steps`, temperature, prompt).
//! * [`ChatClient`]: the endpoint, with bounded retries of 429 (`Retry-After`), 5xx,
//!   timeouts and dropped connections.
//! * [`Planner`]: the agent. Before it acts on an answer it records the exchange
//!   (`RecordModelStep`: the messages the request added, the request's hash, the whole
//!   response); replay, `toka verify` and restarts read those records and never call
//!   the model. The tools it offers the model are what its own token permits
//!   ([`Toolbox`]); the kernel decides every call, so whatever a tool's output tells the
//!   model, it cannot do more than the token allows.
//!
//! What it is not: the rules (the kernel's), or the tools (the node's).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod conversation;
mod host;
mod planner;
mod provider;
mod toolbox;

pub use config::{PlannerConfig, PlannerConfigError};
pub use conversation::{Conversation, Reply, ToolCallAsk, one_line};
pub use host::{PlannerHost, host_planners};
pub use planner::{LEASE_SECS, Planner};
pub use provider::{Answer, ChatClient, ProviderError};
pub use toolbox::{Entry, Target, Toolbox};
