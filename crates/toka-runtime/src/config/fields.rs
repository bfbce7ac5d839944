//! The catalogue of settings: every key with its default and what it does ([`FIELDS`]),
//! the sections other crates own, and how a default or an environment value becomes
//! TOML. What `toka init` writes and what the loader checks against; not the loading
//! itself (the parent module).

/// One documented setting.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its section.
    pub section: &'static str,
    /// Its key.
    pub key: &'static str,
    /// Its default, as TOML.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// The section `rest` (a `TOKA_` variable's name after the prefix, lower case) seems
/// meant for, when its first word is a near miss of a section's (`servr_listen`):
/// such a variable is a typo, not someone else's variable, and is refused.
pub(super) fn misspelt_section(rest: &str) -> Option<&'static str> {
    let (word, _) = rest.split_once('_')?;
    FIELDS
        .iter()
        .map(|f| f.section)
        .chain(OWNED_SECTIONS.iter().copied())
        .find(|section| {
            let first = section.split('_').next().unwrap_or(section);
            first != word && toka_types::edit_distance(first, word) <= 2 && word.len() >= 3
        })
}

/// The section the tool crate owns (tools, workspaces, allowlists, commands).
pub const TOOLS_SECTION: &str = "tools";
/// The section the planner crate owns (the model endpoint and its settings).
pub const PLANNER_SECTION: &str = "planner";
/// Sections another crate reads and checks; passed through as written, with no
/// environment overrides.
pub(super) const OWNED_SECTIONS: &[&str] = &[TOOLS_SECTION, PLANNER_SECTION];

/// The commented `[tools]` section of a new `toka.toml` (the tool crate documents and
/// checks the keys; see docs/tools.md).
pub(super) const TOOLS_TEMPLATE: &str = r#"
# Tools agents may call through Toka (docs/tools.md). Uncomment to change the defaults.
# [tools]
# workspace = "workspace"                  # fs.* and exec.* work only inside it
# per_agent_workspace = false
# require_approval = ["fs.write", "exec.*"]
# approval_ttl_secs = 3600
#
# [tools.http]                             # http.fetch is offered once hosts are allowed
# allow_hosts = ["api.example.com", "127.0.0.1:8080"]
#
# [tools.exec.git-log]                     # the tool exec.git-log; no shell, fixed program
# program = "/usr/bin/git"
# args = ["log", "--oneline", "-n", "{count}"]
# params.count = { type = "integer", minimum = 1, maximum = 50 }

# The LLM planner of `toka run` (docs/planner.md). Any OpenAI-compatible endpoint.
# [planner]
# base_url = "http://127.0.0.1:11434/v1"
# model = "llama3.1"
# api_key_env = "OPENAI_API_KEY"           # the name of the variable, never the key
# max_steps = 20
"#;

/// Every setting, in file order.
pub const FIELDS: &[Field] = &[
    Field {
        section: "store",
        key: "driver",
        default: "\"sqlite\"",
        doc: "Storage driver: \"sqlite\" (embedded, durable, the default), \"sled\", \"memory\" (not durable) or \"postgres\", among those compiled in.",
    },
    Field {
        section: "store",
        key: "path",
        default: "\"data/toka.db\"",
        doc: "The SQLite file or sled folder, relative to this file's folder.",
    },
    Field {
        section: "store",
        key: "postgres_url",
        default: "\"\"",
        doc: "PostgreSQL connection string for driver \"postgres\" (also TOKA_POSTGRES_URL).",
    },
    Field {
        section: "store",
        key: "postgres_schema",
        default: "\"toka\"",
        doc: "PostgreSQL schema holding the log; nodes sharing one log use the same schema.",
    },
    Field {
        section: "store",
        key: "postgres_ca_file",
        default: "\"\"",
        doc: "Extra CA certificates (PEM) to trust when the connection string has sslmode=require.",
    },
    Field {
        section: "pipeline",
        key: "queue_capacity",
        default: "65536",
        doc: "Messages waiting for the writer before submitters are held back.",
    },
    Field {
        section: "pipeline",
        key: "max_batch",
        default: "1024",
        doc: "Most messages decided and committed in one storage append (group commit).",
    },
    Field {
        section: "pipeline",
        key: "busy_timeout_ms",
        default: "2000",
        doc: "How long a submitter waits for room in a full queue before getting Busy.",
    },
    Field {
        section: "pipeline",
        key: "shared_overlap_min",
        default: "256",
        doc: "On a shared PostgreSQL log, the smallest batch a node that sees no other node's appends decides while the batch before it is written (smaller ones are decided holding the log's head: cheaper than the extra commit).",
    },
    Field {
        section: "snapshots",
        key: "every_events",
        default: "100000",
        doc: "Take a snapshot after this many events (0: never automatically).",
    },
    Field {
        section: "snapshots",
        key: "keep",
        default: "3",
        doc: "Snapshots kept; older ones are pruned.",
    },
    Field {
        section: "snapshots",
        key: "on_shutdown",
        default: "true",
        doc: "Take a snapshot when shutting down cleanly.",
    },
    Field {
        section: "checkpoints",
        key: "every_events",
        default: "10000",
        doc: "Sign a checkpoint after this many events (0: only at snapshots and shutdown).",
    },
    Field {
        section: "checkpoints",
        key: "every_secs",
        default: "60",
        doc: "Sign a checkpoint when this many seconds passed and the log grew (0: never by time).",
    },
    Field {
        section: "checkpoints",
        key: "file",
        default: "\"checkpoints/checkpoints.jsonl\"",
        doc: "The file signed checkpoints are appended to, outside the store (copy it off the host for audits).",
    },
    Field {
        section: "checkpoints",
        key: "key_file",
        default: "\"keys/checkpoint.json\"",
        doc: "The node's Ed25519 checkpoint key (created when missing, mode 0600); `toka checkpoint key` prints its public half.",
    },
    Field {
        section: "rate_limit",
        key: "per_second",
        default: "0",
        doc: "Messages per second allowed per origin agent (0: no limit).",
    },
    Field {
        section: "rate_limit",
        key: "burst",
        default: "1000",
        doc: "Messages an origin may send at once above its rate.",
    },
    Field {
        section: "auth",
        key: "key_file",
        default: "\"keys/signing.json\"",
        doc: "The signing key file (written by `toka init`, readable only by its owner), relative to this file's folder.",
    },
    Field {
        section: "auth",
        key: "token_ttl_secs",
        default: "3600",
        doc: "Lifetime of tokens the runtime mints (at most 86400).",
    },
    Field {
        section: "auth",
        key: "max_chain_lifetime_secs",
        default: "2592000",
        doc: "How long a chain of tokens may be renewed, from its root token's issuance (30 days; at most 366 days). After it, mint a fresh root token.",
    },
    Field {
        section: "server",
        key: "listen",
        default: "\"127.0.0.1:7878\"",
        doc: "Address `toka serve` listens on.",
    },
    Field {
        section: "server",
        key: "max_body_bytes",
        default: "2097152",
        doc: "Largest HTTP request body accepted.",
    },
    Field {
        section: "server",
        key: "max_streams",
        default: "256",
        doc: "Most event streams (SSE) served at once; more are refused with 503 and Retry-After.",
    },
    Field {
        section: "agents",
        key: "max_restarts",
        default: "5",
        doc: "How many times the supervisor restarts a failing user-space agent.",
    },
];

pub(super) fn defaults_table() -> toml::Table {
    let mut root = toml::Table::new();
    for f in FIELDS {
        let section = root
            .entry(f.section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = section {
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {}", f.default))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(String::new()));
            t.insert(f.key.to_string(), value);
        }
    }
    root
}

/// Parses an environment value as a TOML value of the type the default has.
pub(super) fn env_value(field: &Field, raw: &str) -> toml::Value {
    if field.default.starts_with('"') {
        toml::Value::String(raw.to_string())
    } else {
        toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()))
    }
}
