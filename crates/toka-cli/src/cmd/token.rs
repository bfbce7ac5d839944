//! `toka token`: issue, renew, inspect, revoke, and root tokens.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::json;
use toka_api::views::TokenResponse;

use super::client::{send, toka_auth_claims};
use crate::Remote;
use crate::client::Client;
use crate::output::Out;

/// A lifetime from the command line: whole seconds (`3600`) or a duration (`8h`,
/// `30m`, `1h 30m`), 1 second to 24 hours.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let secs = crate::duration_secs(text, "3600, 90m or 8h")?;
    if (1..=toka_types::limits::MAX_TOKEN_LIFETIME_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{text:?} is {secs} s; a token lives 1 s to 24h"))
    }
}

/// Asks a running server for a root token, proving possession of the node's signing
/// key with a proof signed by it: a token no log issued, carrying `token:root`, living
/// 60 s.
async fn root_from_server(config: &std::path::Path, server: &str) -> Result<TokenResponse> {
    let loaded = crate::setup::load_config(config)?;
    let key_file = loaded.resolve(&loaded.auth.key_file);
    let keys = toka_runtime::keys::load_keys(&key_file).with_context(|| {
        format!(
            "cannot read the signing key {} (a root token needs the node's key)",
            key_file.display()
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let nonce = toka_runtime::keys::random_id()?;
    let mut claims = toka_auth::Claims::new(nonce, format!("root-request-{nonce}"), now, now + 60);
    claims.permissions = vec![toka_api::tokens::ROOT_REQUEST.into()];
    let proof = toka_auth::mint(&keys, &claims)?;
    let remote = Remote {
        server: Some(server.to_string()),
        profile: None,
        token: Some(proof),
        token_file: None,
        idempotency_key: None,
    };
    let client = Client::new(&remote)?;
    client.post("/v1/tokens/root", &json!({})).await
}

/// "in 59m", "in 3h", "2m ago".
pub fn expires_in(exp: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (delta, ago) = if exp >= now {
        (exp - now, false)
    } else {
        (now - exp, true)
    };
    let text = match delta {
        0..=119 => format!("{delta}s"),
        120..=7199 => format!("{}m", delta / 60),
        _ => format!("{}h{}m", delta / 3600, (delta % 3600) / 60),
    };
    if ago {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Mint a token attenuated from yours (needs token:issue).
    Issue {
        #[command(flatten)]
        remote: Remote,
        /// The agent it is for: an id, id prefix, name or path such as root/planner.
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        sub: String,
        /// A permission to grant (repeat).
        #[arg(long = "perm", required = true, add = clap_complete::ArgValueCompleter::new(crate::complete::permissions))]
        permissions: Vec<String>,
        /// `*` or an agent id.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime: seconds or a duration such as `8h`, `30m` (at most 24h; default:
        /// as long as your own token).
        #[arg(long = "ttl", value_parser = parse_ttl)]
        ttl_secs: Option<u64>,
        /// Most model tokens it may spend (default: what your token has left).
        #[arg(long)]
        budget_tokens: Option<u64>,
        /// Most tool calls it may make (default: what your token has left).
        #[arg(long)]
        budget_tool_calls: Option<u64>,
        /// Most agents it may spawn (default: what your token has left).
        #[arg(long)]
        budget_spawns: Option<u64>,
    },
    /// Show a token's claims (without verifying them) and, from the server, what its
    /// budget has left.
    Inspect {
        #[command(flatten)]
        remote: Remote,
        /// The token (default: --token / TOKA_TOKEN).
        #[arg(value_name = "TOKEN")]
        inspected: Option<String>,
    },
    /// Revoke a token by its jti (needs token:revoke).
    Revoke {
        #[command(flatten)]
        remote: Remote,
        /// The token id.
        #[arg(value_parser = crate::parse_id)]
        jti: String,
    },
    /// Renew your token: a new one with the same grant (or fewer permissions) and a
    /// fresh expiry, within the chain's lifetime. Works while the old one is valid.
    Renew {
        #[command(flatten)]
        remote: Remote,
        /// Lifetime: seconds or a duration such as `8h` (at most 24h; default: your
        /// token's own lifetime).
        #[arg(long = "ttl", value_parser = parse_ttl)]
        ttl_secs: Option<u64>,
        /// Keep only this permission (repeat; default: all of yours).
        #[arg(long = "perm", add = clap_complete::ArgValueCompleter::new(crate::complete::permissions))]
        permissions: Vec<String>,
    },
    /// Mint a fresh admin token for the root agent from the node's signing key: on the
    /// data folder (offline), or with `--server` from a running server, proving you
    /// hold the key. Either way the issuance is in the log.
    Root {
        #[command(flatten)]
        local: crate::Local,
        /// A running server to ask (it checks a short-lived proof signed with the
        /// key of --config's `auth.key_file`).
        #[arg(long, env = "TOKA_SERVER")]
        server: Option<String>,
    },
}

pub async fn token(cmd: TokenCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        TokenCmd::Issue {
            remote,
            sub,
            permissions,
            scope,
            ttl_secs,
            budget_tokens,
            budget_tool_calls,
            budget_spawns,
        } => {
            let client = Client::new(&remote)?;
            let sub = client.agent_id(&sub).await?;
            // A scope may name an agent the same ways; `*` stays `*`.
            let scope = match scope {
                Some(s) if s != "*" => Some(client.agent_id(&s).await?),
                other => other,
            };
            let budget = json!({"model_tokens": budget_tokens, "tool_calls": budget_tool_calls, "spawns": budget_spawns});
            let r: TokenResponse = client
                .post(
                    "/v1/tokens",
                    &json!({"sub": sub, "permissions": permissions, "scope": scope, "ttl_secs": ttl_secs, "budget": budget}),
                )
                .await?;
            out.result(&r, &[&r.token], || {
                out.say(format!(
                    "token for {} (jti {}, expires {}, permissions {}, budget {}):",
                    r.sub,
                    r.jti,
                    expires_in(r.exp),
                    r.permissions.join(","),
                    budget_text(&r.budget)
                ));
                out.say(&r.token);
            });
        }
        TokenCmd::Inspect {
            mut remote,
            inspected,
        } => {
            // The token given, else the one the command would use (flag, file, profile).
            let token = match inspected {
                Some(t) => t,
                None => Client::new(&remote)?.token().to_string(),
            };
            let claims = toka_auth_claims(&token)?;
            // What is left is the log's to say: ask the server, if one answers.
            remote.token_file = None;
            remote.token = Some(token);
            let left: Option<toka_api::views::BudgetLeft> = match Client::new(&remote) {
                Ok(client) => client.get("/v1/budget", &[]).await.ok(),
                Err(_) => None,
            };
            let jti = claims["jti"].as_str().unwrap_or_default().to_string();
            out.result(&json!({"claims": claims, "budget": left}), &[&jti], || {
                out.say("claims (signature NOT verified; the server verifies):");
                out.say(serde_json::to_string_pretty(&claims).unwrap_or_default());
                match &left {
                    Some(b) => out.say(format!(
                        "budget: limits {}; left {}; spent {}",
                        budget_text(&b.limits),
                        budget_text(&b.left),
                        budget_text(&b.spent)
                    )),
                    None => out.say("budget: no server answered (--server / TOKA_SERVER)"),
                }
            });
        }
        TokenCmd::Revoke { remote, jti } => {
            let client = Client::new(&remote)?;
            let r = send(&client, None, json!({"op": "revoke_token", "jti": jti})).await?;
            out.emit(&r, || out.say(format!("revoked {jti}")));
        }
        TokenCmd::Renew {
            remote,
            ttl_secs,
            permissions,
        } => {
            let client = Client::new(&remote)?;
            let permissions = (!permissions.is_empty()).then_some(permissions);
            let r: TokenResponse = client
                .post(
                    "/v1/tokens/renew",
                    &json!({"ttl_secs": ttl_secs, "permissions": permissions}),
                )
                .await
                .context("cannot renew: a token can be renewed only while it is valid; once it expired, ask its issuer for a new one")?;
            out.result(&r, &[&r.token], || {
                crate::output::warn(format!(
                    "renewed: jti {}, expires {}",
                    r.jti,
                    expires_in(r.exp)
                ));
                out.say(&r.token);
            });
        }
        TokenCmd::Root {
            local,
            server: Some(server),
        } => {
            let r = root_from_server(&local.config, &server).await?;
            out.result(
                &json!({"root": r.sub, "token": r.token, "jti": r.jti, "exp": r.exp, "seq": r.seq}),
                &[&r.token],
                || out.say(&r.token),
            );
        }
        TokenCmd::Root {
            local,
            server: None,
        } => {
            // The issuance goes through the kernel and into the log like any other, so
            // this opens the data folder (refused while a server holds it).
            let config = crate::setup::load_config(&local.config)?;
            let runtime = toka_runtime::Runtime::start(&config).await?;
            let issued = runtime.issue_root_token().await;
            runtime.shutdown().await;
            let issued = issued?;
            let root = issued.claims.sub.to_string();
            out.result(
                &json!({"root": root, "token": issued.token, "jti": issued.claims.jti, "exp": issued.claims.exp, "seq": issued.seq}),
                &[&issued.token],
                || out.say(&issued.token),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `model_tokens 500, tool_calls 10`, or `unlimited`.
pub(crate) fn budget_text(b: &toka_api::views::BudgetView) -> String {
    let parts: Vec<String> = [
        ("model_tokens", b.model_tokens),
        ("tool_calls", b.tool_calls),
        ("spawns", b.spawns),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|n| format!("{k} {n}")))
    .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(", ")
    }
}
