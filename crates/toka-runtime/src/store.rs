//! Opening the storage driver the configuration names, among those compiled in.

use std::sync::Arc;

use toka_store_core::{StorageBackend, StoreError};

use crate::config::Config;

/// Opens the configured store.
pub async fn open_store(config: &Config) -> Result<Arc<dyn StorageBackend>, StoreError> {
    let path = config.resolve(&config.store.path);
    match config.store.driver.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(toka_store_sqlite::SqliteStore::open(path).await?)),
        #[cfg(feature = "sled")]
        "sled" => Ok(Arc::new(toka_store_sled::SledStore::open(path).await?)),
        #[cfg(feature = "postgres")]
        "postgres" => {
            let _ = path;
            if config.store.postgres_url.is_empty() {
                return Err(StoreError::InvalidRequest(
                    "store.driver is \"postgres\" but no connection string is set: set store.postgres_url or TOKA_POSTGRES_URL".into(),
                ));
            }
            Ok(Arc::new(
                toka_store_postgres::PostgresStore::open(
                    &config.store.postgres_url,
                    &config.store.postgres_schema,
                )
                .await?,
            ))
        }
        #[cfg(feature = "memory")]
        "memory" => {
            let _ = path;
            Ok(Arc::new(toka_store_memory::MemoryStore::new()))
        }
        other => Err(StoreError::InvalidRequest(format!(
            "store.driver {other:?} is not compiled into this build (built with: {})",
            compiled_drivers().join(", ")
        ))),
    }
}

/// The drivers this build has.
pub fn compiled_drivers() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "sqlite") {
        out.push("sqlite");
    }
    if cfg!(feature = "sled") {
        out.push("sled");
    }
    if cfg!(feature = "memory") {
        out.push("memory");
    }
    if cfg!(feature = "postgres") {
        out.push("postgres");
    }
    out
}
