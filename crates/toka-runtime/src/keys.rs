//! Signing keys on disk, and the randomness the core may not draw: new keys and token
//! ids.
//!
//! The key file is a keyring, JSON, readable only by its owner (mode 0600 on Unix):
//! `{"active": "<kid>", "keys": [<key>, …]}` where each key is `{"kid": "...", "alg":
//! "HS256", "secret_b64": "..."}` or `{"kid": "...", "alg": "EdDSA", "pkcs8_b64":
//! "..."}`. The active key signs new tokens; the others still verify the tokens they
//! signed until they are retired ([`rotate`], [`retire`]). A file holding one bare key
//! (the format before keyrings) loads as a keyring of that key. Every write replaces
//! the file atomically (a new file renamed over it), so a running server that reloads
//! it never reads half a keyring.

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
    let key = new_key_file(algorithm)?;
    let kid = key.kid.clone();
    let ring = Keyring {
        active: kid.clone(),
        keys: vec![key],
    };
    let json = serde_json::to_vec_pretty(&ring).map_err(|e| KeyError::Invalid {
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

/// The keyring file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keyring {
    active: String,
    keys: Vec<KeyFile>,
}

fn read_keyring(path: &Path) -> Result<Keyring, KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if let Ok(ring) = serde_json::from_slice::<Keyring>(&text) {
        if !ring.keys.iter().any(|k| k.kid == ring.active) {
            return Err(invalid(format!(
                "active key {:?} is not in the keyring",
                ring.active
            )));
        }
        return Ok(ring);
    }
    let single: KeyFile = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    Ok(Keyring {
        active: single.kid.clone(),
        keys: vec![single],
    })
}

fn write_keyring(path: &Path, ring: &Keyring) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let json = serde_json::to_vec_pretty(ring).map_err(|e| KeyError::Invalid {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let temp = path.with_extension("json.new");
    write_private(&temp, &json).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

fn new_key_file(algorithm: NewKeyAlgorithm) -> Result<KeyFile, KeyError> {
    let kid = format!("k-{}", &random_id()?.to_string()[..8]);
    Ok(match algorithm {
        NewKeyAlgorithm::Hs256 => {
            let mut secret = [0u8; 32];
            random_bytes(&mut secret)?;
            KeyFile {
                kid,
                alg: "HS256".into(),
                secret_b64: Some(STANDARD.encode(secret)),
                pkcs8_b64: None,
            }
        }
        NewKeyAlgorithm::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::NoRandomness)?;
            KeyFile {
                kid,
                alg: "EdDSA".into(),
                secret_b64: None,
                pkcs8_b64: Some(STANDARD.encode(pkcs8.as_ref())),
            }
        }
    })
}

/// Adds a new key to the keyring at `path` and makes it the active one; the others keep
/// verifying. Returns the new `kid`.
pub fn rotate(path: &Path, algorithm: NewKeyAlgorithm) -> Result<String, KeyError> {
    let mut ring = read_keyring(path)?;
    let key = new_key_file(algorithm)?;
    let kid = key.kid.clone();
    ring.keys.push(key);
    ring.active = kid.clone();
    write_keyring(path, &ring)?;
    Ok(kid)
}

/// Removes key `kid` from the keyring at `path`: tokens it signed stop verifying. The
/// active key cannot be retired.
pub fn retire(path: &Path, kid: &str) -> Result<(), KeyError> {
    let mut ring = read_keyring(path)?;
    let invalid = |reason: String| KeyError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    if ring.active == kid {
        return Err(invalid(format!(
            "{kid} is the active key; `toka key rotate` first"
        )));
    }
    let before = ring.keys.len();
    ring.keys.retain(|k| k.kid != kid);
    if ring.keys.len() == before {
        return Err(invalid(format!("no key {kid:?} in the keyring")));
    }
    write_keyring(path, &ring)
}

/// The keyring's `kid`s with their algorithms, and which is active.
pub fn list(path: &Path) -> Result<(String, Vec<(String, String)>), KeyError> {
    let ring = read_keyring(path)?;
    Ok((
        ring.active,
        ring.keys.into_iter().map(|k| (k.kid, k.alg)).collect(),
    ))
}

/// Loads the keyring at `path`: every key verifies, the active one signs.
pub fn load_keys(path: &Path) -> Result<KeySet, KeyError> {
    let ring = read_keyring(path)?;
    let mut set = KeySet::empty();
    for file in ring.keys {
        let active = file.kid == ring.active;
        let key = signing_key(path, file)?;
        if active {
            set.rotate_to(key).map_err(|e| KeyError::Invalid {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        } else {
            set.add(key);
        }
    }
    Ok(set)
}

fn signing_key(path: &Path, file: KeyFile) -> Result<SigningKey, KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let decode = |field: Option<String>, name: &str| {
        let value = field.ok_or_else(|| invalid(format!("{name} missing")))?;
        STANDARD
            .decode(value)
            .map_err(|e| invalid(format!("{name}: {e}")))
    };
    match file.alg.as_str() {
        "HS256" => SigningKey::hs256(file.kid, &decode(file.secret_b64, "secret_b64")?),
        "EdDSA" => SigningKey::ed25519_pkcs8(file.kid, &decode(file.pkcs8_b64, "pkcs8_b64")?),
        other => return Err(invalid(format!("alg {other:?} is not HS256 or EdDSA"))),
    }
    .map_err(|e| invalid(e.to_string()))
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
