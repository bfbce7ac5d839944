//! Connecting with or without TLS, as the connection string's `sslmode` asks.

use std::path::Path;

use futures::StreamExt as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use toka_store_core::StoreError;
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::backend;

/// A TLS connector if `sslmode` is `require` (verifying the server against the system
/// roots and `ca_file`), or `None` for a plain connection.
pub(crate) fn connector(
    pg: &Config,
    ca_file: Option<&Path>,
) -> Result<Option<MakeRustlsConnect>, StoreError> {
    if pg.get_ssl_mode() != SslMode::Require {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| StoreError::InvalidRequest(format!("CA file {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                StoreError::InvalidRequest(format!("CA file {}: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                StoreError::InvalidRequest(format!("CA file {}: {e}", path.display()))
            })?;
        }
    }
    // Name the provider: another crate in the same build may enable rustls' `ring`
    // feature too, and with two providers the implicit default panics at first use.
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::InvalidRequest(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn unreachable(e: tokio_postgres::Error) -> StoreError {
    let cause = backend(e);
    StoreError::backend(
        crate::DRIVER,
        format!("cannot connect to PostgreSQL ({cause}); is the server up and the URL right?"),
    )
}

/// A client whose connection is driven by a background task.
pub(crate) async fn connect(
    pg: &Config,
    tls: Option<&MakeRustlsConnect>,
) -> Result<Client, StoreError> {
    match tls {
        Some(tls) => {
            let (client, connection) = pg.connect(tls.clone()).await.map_err(unreachable)?;
            tokio::spawn(connection);
            Ok(client)
        }
        None => {
            let (client, connection) = pg.connect(NoTls).await.map_err(unreachable)?;
            tokio::spawn(connection);
            Ok(client)
        }
    }
}

/// A client whose asynchronous messages (notifications) arrive on the returned channel.
pub(crate) async fn connect_listening(
    pg: &Config,
    tls: Option<&MakeRustlsConnect>,
) -> Result<
    (
        Client,
        futures::channel::mpsc::UnboundedReceiver<AsyncMessage>,
    ),
    StoreError,
> {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let client = match tls {
        Some(tls) => {
            let (client, mut connection) = pg.connect(tls.clone()).await.map_err(unreachable)?;
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(futures::stream::poll_fn(
                    move |cx| connection.poll_message(cx)
                ));
                while let Some(Ok(message)) = stream.next().await {
                    let _ = tx.unbounded_send(message);
                }
            });
            client
        }
        None => {
            let (client, mut connection) = pg.connect(NoTls).await.map_err(unreachable)?;
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(futures::stream::poll_fn(
                    move |cx| connection.poll_message(cx)
                ));
                while let Some(Ok(message)) = stream.next().await {
                    let _ = tx.unbounded_send(message);
                }
            });
            client
        }
    };
    Ok((client, rx))
}
