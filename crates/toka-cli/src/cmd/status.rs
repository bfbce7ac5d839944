//! `toka login` (save a profile) and `toka status` (who you are on the server).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::json;
use toka_api::views::{AgentView, BudgetLeft};

use super::client::toka_auth_claims;
use super::token::expires_in;
use crate::Remote;
use crate::client::{Client, DEFAULT_SERVER};
use crate::output::Out;
use crate::profile::{self, Profile};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's base URL.
    #[arg(long, env = "TOKA_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// A file holding the token (default: read it from stdin).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The profile's name.
    #[arg(long, env = "TOKA_PROFILE", default_value = profile::DEFAULT)]
    profile: String,
}

pub async fn login(args: LoginArgs, out: Out) -> Result<ExitCode> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .context("cannot read the token from stdin")?;
            text
        }
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("no token given: pass --token-file FILE or pipe the token on stdin");
    }
    // Only a token the server accepts is saved.
    let remote = Remote {
        server: Some(args.server.clone()),
        profile: None,
        token: Some(token.clone()),
        token_file: None,
        idempotency_key: None,
    };
    let client = Client::new(&remote)?;
    let _: BudgetLeft = client
        .get("/v1/budget", &[])
        .await
        .context("the server did not accept this token; nothing was saved")?;
    let claims = toka_auth_claims(&token)?;
    let path = profile::save(
        &args.profile,
        Profile {
            server: args.server.clone(),
            token,
        },
    )?;
    let exp = claims["exp"].as_u64().unwrap_or(0);
    out.emit(
        &json!({"profile": args.profile, "server": args.server, "file": path.display().to_string(), "sub": claims["sub"], "exp": exp}),
        || {
            out.say(format!(
                "saved profile {:?} for {} in {} (token expires {})",
                args.profile,
                args.server,
                path.display(),
                expires_in(exp)
            ))
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn status(remote: Remote, out: Out) -> Result<ExitCode> {
    let client = Client::new(&remote)?;
    let claims = toka_auth_claims(client.token())?;
    let budget: BudgetLeft = client.get("/v1/budget", &[]).await?;
    let sub = claims["sub"].as_str().unwrap_or_default().to_string();
    let agent: Option<AgentView> = client.get(&format!("/v1/agents/{sub}"), &[]).await.ok();
    let exp = claims["exp"].as_u64().unwrap_or(0);
    let scope = claims["scope"]
        .as_str()
        .unwrap_or("its subject's subtree")
        .to_string();
    let report = json!({
        "server": client.base(),
        "sub": sub,
        "name": agent.as_ref().map(|a| a.name.clone()),
        "jti": claims["jti"],
        "permissions": claims["permissions"],
        "scope": scope,
        "exp": exp,
        "budget": budget,
    });
    out.emit(&report, || {
        let name = agent.as_ref().map_or("?", |a| a.name.as_str());
        out.say(format!("server       {}", client.base()));
        out.say(format!("subject      {name} ({sub})"));
        out.say(format!(
            "permissions  {}",
            claims["permissions"]
                .as_array()
                .map(|p| p
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ));
        out.say(format!("scope        {scope}"));
        out.say(format!(
            "budget left  {}",
            super::token::budget_text(&budget.left)
        ));
        out.say(format!("expires      {}", expires_in(exp)));
    });
    Ok(ExitCode::SUCCESS)
}
