//! The node's signing keys while it runs: reloading the keyring file, and recording
//! every change of keys in the log.
//!
//! `toka key rotate` and `toka key retire` edit the keyring file (atomically); a
//! running node notices the change (it looks every [`KEY_FILE_POLL`], and at once on
//! SIGHUP through [`Runtime::reload_keys`]), and the writer records `key.rotated` /
//! `key.retired` (the `kid`, never the key) before the new key set verifies anything:
//! every message after that event in the log was checked with the new keys. At start,
//! the keyring is compared with what the log knows (the newest signing `kid`), so a
//! rotation made while the node was down is recorded too.

use std::time::{Duration, SystemTime};

use toka_auth::KeySet;

use crate::pipeline::Request;
use crate::runtime::Runtime;

/// How often a running node looks at its keyring file.
pub const KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChange {
    /// The new active `kid`, if the active key changed.
    pub rotated: Option<String>,
    /// The `kid`s that no longer verify.
    pub retired: Vec<String>,
}

impl KeyChange {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.rotated.is_none() && self.retired.is_empty()
    }
}

/// Why the keys were not reloaded (the old ones stay in force).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyReloadError {
    /// This runtime has no keyring file to reload.
    #[error("this runtime was given its keys directly, not from a keyring file")]
    NoKeyFile,
    /// The file could not be read or is not a keyring.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// The new keyring has no active signing key.
    #[error("the keyring has no active key that can sign")]
    NoActiveKey,
    /// The change could not be recorded (the kernel refused it, or the store failed).
    #[error("the key change could not be recorded: {0}")]
    Refused(crate::SubmitError),
}

/// The change from (`active`, `kids`) to `keys`.
fn diff(
    active: Option<&str>,
    kids: &[String],
    keys: &KeySet,
) -> Result<(KeyChange, Option<(String, String)>), KeyReloadError> {
    let new_active = keys.active().ok_or(KeyReloadError::NoActiveKey)?;
    let rotated = (Some(new_active.kid()) != active).then(|| {
        (
            new_active.kid().to_string(),
            new_active.algorithm().as_str().to_string(),
        )
    });
    let retired: Vec<String> = kids
        .iter()
        .filter(|k| keys.get(k).is_none())
        .cloned()
        .collect();
    Ok((
        KeyChange {
            rotated: rotated.as_ref().map(|(k, _)| k.clone()),
            retired,
        },
        rotated,
    ))
}

impl Runtime {
    /// Reads the keyring file again; if the keys changed, records the change in the log
    /// and verifies and signs with the new keys from then on.
    pub async fn reload_keys(&self) -> Result<KeyChange, KeyReloadError> {
        let _one_at_a_time = self.reload_guard().await;
        let path = self.key_file().ok_or(KeyReloadError::NoKeyFile)?;
        let keys = crate::keys::load_keys(path)?;
        let current = self.keys();
        let kids: Vec<String> = current.kids().map(str::to_string).collect();
        let (change, rotated) = diff(current.active().map(|k| k.kid()), &kids, &keys)?;
        self.record(keys, change, rotated).await
    }

    /// At start: the keyring against what the log knows of the signing keys.
    pub(crate) async fn record_keys_against_log(&self) -> Result<KeyChange, KeyReloadError> {
        let _one_at_a_time = self.reload_guard().await;
        let (active, kids) = self.read(|s| {
            let kids = s
                .signing_keys()
                .filter(|(_, retired)| !retired)
                .map(|(k, _)| k.to_string())
                .collect::<Vec<_>>();
            (s.signing_kid().map(str::to_string), kids)
        });
        let Some(active) = active else {
            // The log knows no key yet: the keyring is the baseline.
            return Ok(KeyChange::default());
        };
        let keys = (*self.keys()).clone();
        let (change, rotated) = diff(Some(&active), &kids, &keys)?;
        self.record(keys, change, rotated).await
    }

    async fn record(
        &self,
        keys: KeySet,
        change: KeyChange,
        rotated: Option<(String, String)>,
    ) -> Result<KeyChange, KeyReloadError> {
        if change.is_empty() {
            self.set_keys(keys);
            return Ok(change);
        }
        let request = Request::Keys {
            keys: keys.clone(),
            rotated,
            retired: change.retired.clone(),
        };
        self.submit_request(request)
            .await
            .map_err(|r| KeyReloadError::Refused(r.error))?;
        self.set_keys(keys);
        tracing::info!(rotated = ?change.rotated, retired = ?change.retired, "signing keys changed");
        Ok(change)
    }

    /// Reloads the keys whenever the keyring file's modification time changes, until
    /// the runtime shuts down.
    pub(crate) fn watch_key_file(&self) {
        let Some(path) = self.key_file().map(|p| p.to_path_buf()) else {
            return;
        };
        // Weak: the watcher must not keep a shut-down runtime's store open.
        let weak = self.downgrade();
        let modified = |p: &std::path::Path| -> Option<SystemTime> {
            std::fs::metadata(p).and_then(|m| m.modified()).ok()
        };
        let mut seen = modified(&path);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEY_FILE_POLL).await;
                let Some(runtime) = Runtime::upgrade(&weak) else {
                    return;
                };
                if runtime.is_stopped() {
                    return;
                }
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                if let Err(e) = runtime.reload_keys().await {
                    tracing::error!(error = %e, "the changed keyring was not loaded; the old keys stay in force");
                }
            }
        });
    }
}
