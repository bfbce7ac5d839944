//! Signing keys on disk, and the randomness the core may not draw: new keys and token
//! ids.
//!
//! A key file is JSON: `{"kid": "...", "alg": "HS256", "secret_b64": "..."}` or
//! `{"kid": "...", "alg": "EdDSA", "pkcs8_b64": "..."}`. [`write_new_key`] creates it
//! readable only by its owner (mode 0600 on Unix).

use std::io::Write as _;
use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use toka_auth::{KeySet, SigningKey};
use toka_types::EntityId;

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file exists already (and would be overwritten).
    #[error("{path} exists already; remove it or use --force")]
    Exists {
        /// The file.
        path: String,
    },
    /// The file is not a valid key file.
    #[error("{path}: not a Toka key file: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The operating system gave no randomness.
    #[error("system randomness unavailable")]
    NoRandomness,
}

/// Which algorithm a new key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKeyAlgorithm {
    /// HMAC-SHA256 with a 32-byte random secret.
    Hs256,
    /// Ed25519.
    EdDsa,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    kid: String,
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pkcs8_b64: Option<String>,
}

/// Fills `buf` with random bytes from the operating system.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), KeyError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| KeyError::NoRandomness)
}

/// A random 16-bit number (for jitter); 0 if the system has no randomness.
pub fn random_u16() -> u16 {
    let mut bytes = [0u8; 2];
    random_bytes(&mut bytes)
        .map(|()| u16::from_le_bytes(bytes))
        .unwrap_or(0)
}

/// A random id (for token `jti`s and other non-kernel names).
pub fn random_id() -> Result<EntityId, KeyError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4 (random)
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(EntityId::from_bytes(bytes))
}

/// Writes a new signing key to `path` (mode 0600), refusing to overwrite unless
/// `force`. Returns its `kid`.
pub fn write_new_key(
    path: &Path,
    algorithm: NewKeyAlgorithm,
    force: bool,
) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() && !force {
        return Err(KeyError::Exists {
            path: path.display().to_string(),
        });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let kid = format!("k-{}", &random_id()?.to_string()[..8]);
    let file = match algorithm {
        NewKeyAlgorithm::Hs256 => {
            let mut secret = [0u8; 32];
            random_bytes(&mut secret)?;
            KeyFile {
                kid: kid.clone(),
                alg: "HS256".into(),
                secret_b64: Some(STANDARD.encode(secret)),
                pkcs8_b64: None,
            }
        }
        NewKeyAlgorithm::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::NoRandomness)?;
            KeyFile {
                kid: kid.clone(),
                alg: "EdDSA".into(),
                secret_b64: None,
                pkcs8_b64: Some(STANDARD.encode(pkcs8.as_ref())),
            }
        }
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| KeyError::Invalid {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    write_private(path, &json).map_err(io)?;
    Ok(kid)
}

/// Writes `bytes` to `path`, readable only by its owner (mode 0600 on Unix), synced.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(path)?;
    out.write_all(bytes)?;
    out.sync_all()
}

/// Loads the key file at `path` as a key set with that key active.
pub fn load_keys(path: &Path) -> Result<KeySet, KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let file: KeyFile = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    let decode = |field: Option<String>, name: &str| {
        let value = field.ok_or_else(|| invalid(format!("{name} missing")))?;
        STANDARD
            .decode(value)
            .map_err(|e| invalid(format!("{name}: {e}")))
    };
    let key = match file.alg.as_str() {
        "HS256" => SigningKey::hs256(file.kid, &decode(file.secret_b64, "secret_b64")?),
        "EdDSA" => SigningKey::ed25519_pkcs8(file.kid, &decode(file.pkcs8_b64, "pkcs8_b64")?),
        other => return Err(invalid(format!("alg {other:?} is not HS256 or EdDSA"))),
    }
    .map_err(|e| invalid(e.to_string()))?;
    Ok(KeySet::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keys_load_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [NewKeyAlgorithm::Hs256, NewKeyAlgorithm::EdDsa] {
            let path = dir.path().join(format!("{alg:?}.json"));
            let kid = write_new_key(&path, alg, false).unwrap();
            let keys = load_keys(&path).unwrap();
            assert_eq!(keys.active().unwrap().kid(), kid);
            assert!(matches!(
                write_new_key(&path, alg, false),
                Err(KeyError::Exists { .. })
            ));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
        std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
        assert!(matches!(
            load_keys(&dir.path().join("bad.json")),
            Err(KeyError::Invalid { .. })
        ));
    }
}
