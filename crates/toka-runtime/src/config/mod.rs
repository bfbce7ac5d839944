//! [`Config`]: the runtime's settings, from a TOML file with `TOKA_*` environment
//! overrides.
//!
//! Every setting has a default, documented in [`FIELDS`] (which `toka init` turns into
//! a commented `toka.toml`). An environment variable `TOKA_<SECTION>_<KEY>` (upper
//! case) overrides `<key>` in `[<section>]`, e.g. `TOKA_STORE_DRIVER=memory`. Unknown
//! keys in the file, unknown `TOKA_<SECTION>_*` variables and values of the wrong type
//! are refused with an error that names the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod fields;

pub use fields::{FIELDS, Field, PLANNER_SECTION, TOOLS_SECTION};
use fields::{OWNED_SECTIONS, TOOLS_TEMPLATE, defaults_table, env_value, misspelt_section};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{origin}: {message}")]
    Invalid {
        /// Which file or variable.
        origin: String,
        /// What is wrong (names the key).
        message: String,
    },
    /// A value is out of range.
    #[error("{key}: {message}")]
    OutOfRange {
        /// The key, as `section.key`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The driver.
    pub driver: String,
    /// The file or folder.
    pub path: PathBuf,
    /// PostgreSQL connection string.
    pub postgres_url: String,
    /// PostgreSQL schema.
    pub postgres_schema: String,
    /// Extra CA certificates for TLS to PostgreSQL.
    pub postgres_ca_file: PathBuf,
}

/// `[pipeline]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Largest batch.
    pub max_batch: usize,
    /// Wait before `Busy`, in milliseconds.
    pub busy_timeout_ms: u64,
    /// On a shared log, the smallest batch a node alone decides without the head.
    pub shared_overlap_min: usize,
}

/// `[snapshots]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Events between snapshots (0: never).
    pub every_events: u64,
    /// Snapshots kept.
    pub keep: usize,
    /// Snapshot at clean shutdown.
    pub on_shutdown: bool,
}

/// `[checkpoints]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Events between checkpoints (0: only at snapshots and shutdown).
    pub every_events: u64,
    /// Seconds between checkpoints while the log grows (0: never by time).
    pub every_secs: u64,
    /// The checkpoint file.
    pub file: PathBuf,
    /// The checkpoint key file.
    pub key_file: PathBuf,
}

/// `[rate_limit]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Messages per second per origin (0: unlimited).
    pub per_second: u32,
    /// Burst.
    pub burst: u32,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The signing key file.
    pub key_file: PathBuf,
    /// Lifetime of minted tokens.
    pub token_ttl_secs: u64,
    /// How long a chain of tokens may be renewed, from its root token's issuance.
    #[serde(default = "default_chain_lifetime")]
    pub max_chain_lifetime_secs: u64,
}

fn default_chain_lifetime() -> u64 {
    toka_types::limits::DEFAULT_CHAIN_LIFETIME_SECS
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most concurrent event streams.
    pub max_streams: usize,
}

/// `[agents]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// Supervisor restart limit.
    pub max_restarts: u32,
}

/// All settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[store]`.
    pub store: StoreConfig,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[snapshots]`.
    pub snapshots: SnapshotConfig,
    /// `[checkpoints]`.
    pub checkpoints: CheckpointConfig,
    /// `[rate_limit]`.
    pub rate_limit: RateLimitConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[agents]`.
    pub agents: AgentsConfig,
    /// `[tools]`, as written: the tool crate (`toka-tools`) reads and checks it.
    #[serde(default)]
    pub tools: toml::Table,
    /// `[planner]`, as written: the planner crate (`toka-planner`) reads and checks it.
    #[serde(default)]
    pub planner: toml::Table,
    /// The folder relative paths are resolved against (the config file's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Default for Config {
    /// The defaults of [`FIELDS`] (a test checks the two agree).
    fn default() -> Self {
        Self {
            store: StoreConfig {
                driver: "sqlite".into(),
                path: "data/toka.db".into(),
                postgres_url: String::new(),
                postgres_schema: "toka".into(),
                postgres_ca_file: PathBuf::new(),
            },
            pipeline: PipelineConfig {
                queue_capacity: 65_536,
                max_batch: 1024,
                busy_timeout_ms: 2000,
                shared_overlap_min: crate::pipeline::SHARED_OVERLAP_MIN,
            },
            snapshots: SnapshotConfig {
                every_events: 100_000,
                keep: 3,
                on_shutdown: true,
            },
            checkpoints: CheckpointConfig {
                every_events: 10_000,
                every_secs: 60,
                file: "checkpoints/checkpoints.jsonl".into(),
                key_file: "keys/checkpoint.json".into(),
            },
            rate_limit: RateLimitConfig {
                per_second: 0,
                burst: 1000,
            },
            auth: AuthConfig {
                key_file: "keys/signing.json".into(),
                token_ttl_secs: 3600,
                max_chain_lifetime_secs: toka_types::limits::DEFAULT_CHAIN_LIFETIME_SECS,
            },
            server: ServerConfig {
                listen: "127.0.0.1:7878".into(),
                max_body_bytes: 2 * 1024 * 1024,
                max_streams: 256,
            },
            agents: AgentsConfig { max_restarts: 5 },
            tools: toml::Table::new(),
            planner: toml::Table::new(),
            base_dir: PathBuf::from("."),
        }
    }
}

impl Config {
    fn from_table(
        table: toml::Table,
        base_dir: PathBuf,
        origin: &str,
    ) -> Result<Self, ConfigError> {
        // Type errors name the key (serde's message would not say which one).
        let defaults = defaults_table();
        for f in FIELDS {
            let get = |t: &toml::Table| {
                t.get(f.section)
                    .and_then(|s| s.get(f.key))
                    .map(toml::Value::type_str)
            };
            if let (Some(found), Some(expected)) = (get(&table), get(&defaults))
                && found != expected
            {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    message: format!("{}.{} must be {expected}, not {found}", f.section, f.key),
                });
            }
        }
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: origin.to_string(),
                    message: e.message().to_string(),
                })?;
        config.base_dir = base_dir;
        config.check()?;
        Ok(config)
    }

    /// The defaults, overridden by the TOML text `text` (read from `origin`, used in
    /// errors) and then by the `TOKA_*` variables in `env`.
    pub fn from_toml(
        text: &str,
        base_dir: impl Into<PathBuf>,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = defaults_table();
        let file: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        // Unknown sections and keys are refused with their name (serde would say
        // "unknown field" without the section).
        for (section, value) in &file {
            if OWNED_SECTIONS.contains(&section.as_str()) {
                continue; // checked by the crate that owns it, with its own key names
            }
            let known_section = FIELDS.iter().any(|f| f.section == section);
            if !known_section {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    message: format!("unknown section [{section}]"),
                });
            }
            let toml::Value::Table(keys) = value else {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    message: format!("{section} must be a table"),
                });
            };
            for key in keys.keys() {
                if !FIELDS.iter().any(|f| f.section == section && f.key == key) {
                    return Err(ConfigError::Invalid {
                        origin: origin.to_string(),
                        message: format!("unknown key {section}.{key}"),
                    });
                }
            }
        }
        merge(&mut table, file);
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("TOKA_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            if let Some(owned) = OWNED_SECTIONS
                .iter()
                .find(|s| rest.starts_with(&format!("{s}_")))
            {
                return Err(ConfigError::Invalid {
                    origin: "environment".into(),
                    message: format!(
                        "{name}: the [{owned}] section has no environment overrides; set it in the file"
                    ),
                });
            }
            if rest == "postgres_url" {
                if let Some(toml::Value::Table(store)) = table.get_mut("store") {
                    store.insert("postgres_url".into(), toml::Value::String(raw));
                }
                continue;
            }
            let field = FIELDS
                .iter()
                .find(|f| rest == format!("{}_{}", f.section, f.key));
            match field {
                Some(f) => {
                    if let Some(toml::Value::Table(section)) = table.get_mut(f.section) {
                        section.insert(f.key.to_string(), env_value(f, &raw));
                    }
                }
                None if FIELDS
                    .iter()
                    .any(|f| rest.starts_with(&format!("{}_", f.section))) =>
                {
                    return Err(ConfigError::Invalid {
                        origin: "environment".into(),
                        message: format!("unknown setting {name} (see `toka init` for the list)"),
                    });
                }
                None => {
                    if let Some(section) = misspelt_section(&rest) {
                        return Err(ConfigError::Invalid {
                            origin: "environment".into(),
                            message: format!(
                                "unknown setting {name}: there is no section [{}]; did you mean [{section}] (TOKA_{}_…)?",
                                rest.split('_').next().unwrap_or(""),
                                section.to_ascii_uppercase()
                            ),
                        });
                    }
                }
            }
        }
        Self::from_table(table, base_dir.into(), origin)
    }

    /// Loads `path` with the process environment's overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, base, &path.display().to_string(), std::env::vars())
    }

    /// A path from the config, resolved against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let range = |key: &str, message: &str| {
            Err(ConfigError::OutOfRange {
                key: key.into(),
                message: message.into(),
            })
        };
        if !["memory", "sled", "sqlite", "postgres"].contains(&self.store.driver.as_str()) {
            return range(
                "store.driver",
                &format!(
                    "{:?} is not one of memory, sled, sqlite, postgres",
                    self.store.driver
                ),
            );
        }
        if self.pipeline.queue_capacity == 0 {
            return range("pipeline.queue_capacity", "must be at least 1");
        }
        if self.pipeline.max_batch == 0 || self.pipeline.max_batch > 65_536 {
            return range("pipeline.max_batch", "must be 1 to 65536");
        }
        if self.pipeline.shared_overlap_min == 0 || self.pipeline.shared_overlap_min > 65_536 {
            return range("pipeline.shared_overlap_min", "must be 1 to 65536");
        }
        if self.auth.token_ttl_secs == 0
            || self.auth.token_ttl_secs > toka_types::limits::MAX_TOKEN_LIFETIME_SECS
        {
            return range("auth.token_ttl_secs", "must be 1 to 86400");
        }
        if !(1..=toka_types::limits::MAX_CHAIN_LIFETIME_SECS)
            .contains(&self.auth.max_chain_lifetime_secs)
        {
            return range(
                "auth.max_chain_lifetime_secs",
                "must be 1 to 31622400 (366 days)",
            );
        }
        if self.server.max_streams == 0 || self.server.max_streams > 65_536 {
            return range("server.max_streams", "must be 1 to 65536");
        }
        if self.rate_limit.per_second > 0 && self.rate_limit.burst == 0 {
            return range("rate_limit.burst", "must be at least 1 when a rate is set");
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return range(
                "server.listen",
                &format!(
                    "{:?} is not an address like 127.0.0.1:7878",
                    self.server.listen
                ),
            );
        }
        Ok(())
    }

    /// A commented `toka.toml` with every setting at its default.
    pub fn commented_template() -> String {
        let mut out =
            String::from("# Toka configuration. Every setting is shown with its default.\n");
        out.push_str(
            "# Override any of them with TOKA_<SECTION>_<KEY>, e.g. TOKA_STORE_DRIVER=memory.\n",
        );
        let mut section = "";
        for f in FIELDS {
            if f.section != section {
                section = f.section;
                out.push_str(&format!("\n[{section}]\n"));
            }
            out.push_str(&format!("# {}\n{} = {}\n", f.doc, f.key, f.default));
        }
        out.push_str(TOOLS_TEMPLATE);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn defaults_parse_and_template_round_trips() {
        let d = Config::default();
        assert_eq!(d.store.driver, "sqlite");
        assert_eq!(d.pipeline.max_batch, 1024);
        let from_template =
            Config::from_toml(&Config::commented_template(), ".", "template", no_env()).unwrap();
        assert_eq!(from_template, d);
    }

    #[test]
    fn file_and_env_override_in_that_order() {
        let text = "[store]\ndriver = \"memory\"\n[pipeline]\nmax_batch = 10\n";
        let env = vec![
            ("TOKA_PIPELINE_MAX_BATCH".to_string(), "20".to_string()),
            ("HOME".into(), "/x".into()),
        ];
        let c = Config::from_toml(text, ".", "t.toml", env).unwrap();
        assert_eq!(c.store.driver, "memory");
        assert_eq!(c.pipeline.max_batch, 20);
        let c = Config::from_toml(
            "",
            ".",
            "t",
            vec![("TOKA_POSTGRES_URL".into(), "postgres://x".into())],
        )
        .unwrap();
        assert_eq!(c.store.postgres_url, "postgres://x");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err =
            Config::from_toml("[store]\ndrivr = \"x\"\n", ".", "t.toml", no_env()).unwrap_err();
        assert_eq!(err.to_string(), "t.toml: unknown key store.drivr");
        let err = Config::from_toml("[stor]\n", ".", "t.toml", no_env()).unwrap_err();
        assert_eq!(err.to_string(), "t.toml: unknown section [stor]");
        let err = Config::from_toml(
            "[pipeline]\nmax_batch = \"many\"\n",
            ".",
            "t.toml",
            no_env(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_batch"), "{err}");
        let err = Config::from_toml("[store]\ndriver = \"oracle\"\n", ".", "t.toml", no_env())
            .unwrap_err();
        assert!(err.to_string().starts_with("store.driver:"), "{err}");
        let err = Config::from_toml("", ".", "t", vec![("TOKA_SERVR_LISTEN".into(), "x".into())])
            .unwrap_err();
        assert!(err.to_string().contains("did you mean [server]"), "{err}");
        for fine in [
            "TOKA_TOKEN",
            "TOKA_SERVER",
            "TOKA_CONFIG",
            "TOKA_SCHEMATHESIS_SEED",
        ] {
            assert!(
                Config::from_toml("", ".", "t", vec![(fine.into(), "x".into())]).is_ok(),
                "{fine} is not a setting and must be left alone"
            );
        }
        let err = Config::from_toml("", ".", "t", vec![("TOKA_STORE_DRIVR".into(), "x".into())])
            .unwrap_err();
        assert!(err.to_string().contains("TOKA_STORE_DRIVR"), "{err}");
        let err = Config::from_toml(
            "",
            ".",
            "t",
            vec![("TOKA_PIPELINE_MAX_BATCH".into(), "lots".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_batch"), "{err}");
        let err =
            Config::from_toml("[server]\nlisten = \"nowhere\"\n", ".", "t", no_env()).unwrap_err();
        assert!(err.to_string().starts_with("server.listen:"), "{err}");
    }
}
