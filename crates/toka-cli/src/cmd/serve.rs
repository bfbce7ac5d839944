//! `toka serve`: the runtime behind the HTTP API, until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use toka_runtime::Runtime;

use crate::output::Out;
use crate::setup;

/// How long open requests get to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// SIGHUP: reload the keyring now (the server also notices a changed file by itself).
fn reload_keys_on_sighup(runtime: Runtime) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            match runtime.reload_keys().await {
                Ok(change) => tracing::info!(?change, "SIGHUP: keys reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: keys not reloaded"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = runtime;
}

pub async fn run(config_path: &Path, listen: Option<String>, out: Out) -> Result<ExitCode> {
    let config = setup::load_config(config_path)?;
    let addr = listen.unwrap_or_else(|| config.server.listen.clone());
    let node = toka_mcp::start_node(&config).await?;
    let runtime = node.runtime.clone();
    // With [planner], the node runs the planners the log designates (resuming them
    // after a restart); without it, a designation waits for a node that has one.
    let planners = match toka_planner::PlannerConfig::from_table(&config.planner)? {
        Some(planner) => Some(toka_planner::host_planners(
            &runtime,
            planner,
            config.agents.max_restarts,
        )),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let app = toka_api::AppState::new(runtime.clone(), config.server.max_streams, stop.clone());
    // MCP over streamable HTTP at /mcp, the bearer checked per request; the Host
    // header must name this server (DNS-rebinding protection).
    let hosts = vec![local.to_string(), local.ip().to_string()];
    let api = toka_api::router(app.clone(), config.server.max_body_bytes);
    // The web console at `/`: static files that call the API with a pasted token.
    let router = api
        .clone()
        .merge(toka_console::router())
        .nest_service("/mcp", toka_mcp::http_service(app, api, hosts));
    out.emit(
        &serde_json::json!({"listening": format!("http://{local}"), "head": runtime.head().seq}),
        || {
            out.say(format!(
                "toka: listening on http://{local} (head seq {}, driver {}); console at http://{local}/",
                runtime.head().seq,
                config.store.driver
            ));
        },
    );
    // On SIGINT/SIGTERM: event streams end (with a final `closed` event), the server
    // stops accepting and finishes in-flight requests; whatever is still open after
    // the grace period is cut, so the process always exits.
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    reload_keys_on_sighup(runtime.clone());
    let mut stopped = stop.clone();
    let server = toka_api::serve(listener, router, async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    let mut grace = stop;
    let grace = async move {
        let _ = grace.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served?,
        () = grace => tracing::warn!("requests still open after {SHUTDOWN_GRACE:?}; closing them"),
    }
    tracing::info!("shutting down: letting running tool calls finish, draining the queue");
    drop(planners);
    node.shutdown(SHUTDOWN_GRACE).await;
    out.say(format!(
        "toka: stopped cleanly at seq {}",
        runtime.head().seq
    ));
    Ok(ExitCode::SUCCESS)
}
