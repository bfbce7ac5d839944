//! `toka serve`: the runtime behind the HTTP API, until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use toka_runtime::Runtime;

use crate::output::Out;
use crate::setup;

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

pub async fn run(config_path: &Path, listen: Option<String>, out: Out) -> Result<ExitCode> {
    let config = setup::load_config(config_path)?;
    let addr = listen.unwrap_or_else(|| config.server.listen.clone());
    let runtime = Runtime::start(&config).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let router = toka_api::router(
        toka_api::AppState {
            runtime: runtime.clone(),
        },
        config.server.max_body_bytes,
    );
    out.emit(
        &serde_json::json!({"listening": format!("http://{local}"), "head": runtime.head().seq}),
        || {
            out.say(format!(
                "toka: listening on http://{local} (head seq {}, driver {})",
                runtime.head().seq,
                config.store.driver
            ));
        },
    );
    toka_api::serve(listener, router, shutdown_signal()).await?;
    tracing::info!("shutting down: draining the queue");
    runtime.shutdown().await;
    out.say(format!(
        "toka: stopped cleanly at seq {}",
        runtime.head().seq
    ));
    Ok(ExitCode::SUCCESS)
}
