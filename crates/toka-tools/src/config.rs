//! [`ToolsConfig`]: the `[tools]` section of `toka.toml`.
//!
//! ```toml
//! [tools]
//! workspace = "workspace"          # relative to toka.toml's folder
//! per_agent_workspace = false      # true: one sub-folder per agent id
//! require_approval = ["fs.write", "exec.*"]
//! approval_ttl_secs = 3600
//!
//! [tools.http]
//! allow_hosts = ["api.example.com", "127.0.0.1:8080"]
//!
//! [tools.exec.git-status]          # the tool exec.git-status
//! program = "/usr/bin/git"
//! args = ["status", "--short", "--", "{path}"]
//! params.path = { type = "string", description = "a path in the workspace" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toka_types::limits::{MAX_APPROVAL_TTL_SECS, MAX_TOOL_TIMEOUT_MS};

/// Why `[tools]` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[tools] in toka.toml: {0}")]
pub struct ConfigError(pub String);

fn bad(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// The built-in tools a node offers unless `builtins` says otherwise.
pub const DEFAULT_BUILTINS: &[&str] = &["fs.read", "fs.write", "fs.list", "http.fetch"];

/// `[tools]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Offer tools at all.
    pub enabled: bool,
    /// Which built-in tools to offer (`http.fetch` only with a non-empty allowlist).
    pub builtins: Vec<String>,
    /// The workspace folder the fs and exec tools work in.
    pub workspace: PathBuf,
    /// One sub-folder of the workspace per agent (named by its id).
    pub per_agent_workspace: bool,
    /// Tools whose calls wait for approval: names, or families ending in `*`.
    pub require_approval: Vec<String>,
    /// How long a call may wait for approval, in seconds.
    pub approval_ttl_secs: u64,
    /// Largest file `fs.read` returns, in bytes.
    pub max_read_bytes: u64,
    /// Largest content `fs.write` writes, in bytes.
    pub max_write_bytes: u64,
    /// Timeout of the fs tools, in milliseconds.
    pub fs_timeout_ms: u64,
    /// `[tools.http]`.
    pub http: HttpConfig,
    /// `[tools.exec.<name>]`: the commands, each the tool `exec.<name>`.
    pub exec: BTreeMap<String, ExecCommand>,
    /// `[tools.mcp.<name>]`: downstream MCP servers (read by `toka-mcp`'s gateway).
    pub mcp: BTreeMap<String, toml::Value>,
    /// The folder relative paths are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            builtins: DEFAULT_BUILTINS.iter().map(|s| s.to_string()).collect(),
            workspace: "workspace".into(),
            per_agent_workspace: false,
            require_approval: vec!["fs.write".into(), "exec.*".into()],
            approval_ttl_secs: 3600,
            max_read_bytes: 512 * 1024,
            max_write_bytes: 512 * 1024,
            fs_timeout_ms: 10_000,
            http: HttpConfig::default(),
            exec: BTreeMap::new(),
            mcp: BTreeMap::new(),
            base_dir: PathBuf::from("."),
        }
    }
}

/// `[tools.http]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Hosts `http.fetch` may reach: `host` (any port) or `host:port`.
    pub allow_hosts: Vec<String>,
    /// Timeout of one fetch, redirects included, in milliseconds.
    pub timeout_ms: u64,
    /// Largest response body returned, in bytes (the rest is cut, and said so).
    pub max_response_bytes: u64,
    /// Most redirects followed (each checked against the allowlist).
    pub max_redirects: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            timeout_ms: 10_000,
            max_response_bytes: 512 * 1024,
            max_redirects: 5,
        }
    }
}

/// `[tools.exec.<name>]`: one command.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecCommand {
    /// The program, an absolute path (there is no `PATH` lookup and no shell).
    pub program: PathBuf,
    /// The argument template: each entry is one argument, `{param}` replaced by the
    /// input's value; a value never becomes more than one argument.
    #[serde(default)]
    pub args: Vec<String>,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// The input parameters: JSON Schema of each (scalars only: string, integer,
    /// number, boolean). All are required.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Parameters whose values may start with `-` (by default refused, so an input
    /// cannot smuggle in an option).
    #[serde(default)]
    pub allow_leading_dash: Vec<String>,
    /// Fixed environment variables (the environment is otherwise empty).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Timeout, in milliseconds.
    #[serde(default = "default_exec_timeout")]
    pub timeout_ms: u64,
    /// Largest stdout and stderr returned, each, in bytes.
    #[serde(default = "default_exec_output")]
    pub max_output_bytes: usize,
    /// Safe to run again after a crash (run at least once instead of at most once).
    #[serde(default)]
    pub repeatable: bool,
}

fn default_exec_timeout() -> u64 {
    10_000
}
fn default_exec_output() -> usize {
    64 * 1024
}

/// Whether `name` is one of `patterns`: a tool name, or a family ending in `*`.
pub(crate) fn names_match(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

impl ToolsConfig {
    /// Reads `[tools]` (as the runtime's config kept it), resolving paths against
    /// `base_dir`, and checks it.
    pub fn from_table(table: &toml::Table, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        config.base_dir = base_dir.to_path_buf();
        config.check()?;
        Ok(config)
    }

    /// The workspace folder, resolved.
    pub fn workspace_dir(&self) -> PathBuf {
        if self.workspace.is_absolute() {
            self.workspace.clone()
        } else {
            self.base_dir.join(&self.workspace)
        }
    }

    /// Whether calls of tool `name` wait for approval.
    pub fn needs_approval(&self, name: &str) -> bool {
        self.require_approval
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => p == name,
            })
    }

    fn check(&self) -> Result<(), ConfigError> {
        for b in &self.builtins {
            if !DEFAULT_BUILTINS.contains(&b.as_str()) {
                return Err(bad(format!(
                    "unknown built-in tool {b:?} in builtins (known: {})",
                    DEFAULT_BUILTINS.join(", ")
                )));
            }
        }
        if !(1..=MAX_APPROVAL_TTL_SECS).contains(&self.approval_ttl_secs) {
            return Err(bad(format!(
                "approval_ttl_secs must be 1 to {MAX_APPROVAL_TTL_SECS}"
            )));
        }
        for (what, ms) in [
            ("fs_timeout_ms", self.fs_timeout_ms),
            ("http.timeout_ms", self.http.timeout_ms),
        ] {
            if !(1..=MAX_TOOL_TIMEOUT_MS).contains(&ms) {
                return Err(bad(format!("{what} must be 1 to {MAX_TOOL_TIMEOUT_MS}")));
            }
        }
        let cap = toka_types::limits::MAX_TOOL_OUTPUT_BYTES as u64 / 2;
        for (what, n) in [
            ("max_read_bytes", self.max_read_bytes),
            ("max_write_bytes", self.max_write_bytes),
            ("http.max_response_bytes", self.http.max_response_bytes),
        ] {
            if !(1..=cap).contains(&n) {
                return Err(bad(format!("{what} must be 1 to {cap}")));
            }
        }
        if self.http.max_redirects > 20 {
            return Err(bad("http.max_redirects must be at most 20"));
        }
        for host in &self.http.allow_hosts {
            if host.is_empty() || host.contains('/') || host.contains('*') {
                return Err(bad(format!(
                    "http.allow_hosts entry {host:?} must be a host or host:port (no scheme, path or wildcard)"
                )));
            }
        }
        for (name, cmd) in &self.exec {
            crate::exec::check_command(name, cmd).map_err(|e| bad(format!("exec.{name}: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ToolsConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).unwrap();
        ToolsConfig::from_table(&table, Path::new("/srv/toka"))
    }

    #[test]
    fn defaults_and_approval_patterns() {
        let c = parse("").unwrap();
        assert_eq!(c.workspace_dir(), Path::new("/srv/toka/workspace"));
        assert!(c.needs_approval("fs.write"));
        assert!(c.needs_approval("exec.ls"));
        assert!(!c.needs_approval("fs.read"));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for (text, needle) in [
            ("colour = true", "colour"),
            ("builtins = [\"fs.delete\"]", "fs.delete"),
            ("approval_ttl_secs = 0", "approval_ttl_secs"),
            ("[http]\nallow_hosts = [\"http://x\"]", "allow_hosts"),
            ("[exec.ls]\nprogram = \"ls\"", "absolute"),
            (
                "[exec.ls]\nprogram = \"/bin/ls\"\nargs = [\"{dir}\"]",
                "dir",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
