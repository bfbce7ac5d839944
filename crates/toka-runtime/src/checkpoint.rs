//! Signed checkpoints: the node's signed word that its log had `chain_digest` at `seq`
//! and its state hashed to `state_digest`, at `time`.
//!
//! A database-level attacker can rewrite a hash chain from any point on, or cut its
//! tail, and the chain alone still verifies. A checkpoint is signed with the node's own
//! Ed25519 key (kept beside the token signing key, never in the store), so a log that is
//! shorter than a checkpoint, or disagrees with it, is caught by `toka verify` and
//! refused at start. Checkpoints are appended to a file outside the store (hand it, or
//! ship it, to an auditor together with the public key).
//!
//! # The signed bytes
//!
//! The signature is pure Ed25519 (RFC 8032) over exactly these 98 bytes:
//!
//! | field | encoding |
//! |---|---|
//! | domain | the 18 ASCII bytes `toka.checkpoint.v1` |
//! | seq | u64, little-endian |
//! | chain_digest | 32 bytes |
//! | state_digest | 32 bytes |
//! | time | u64 little-endian, microseconds since the Unix epoch |
//!
//! In the checkpoint file each line is one JSON object: `seq`, `chain_digest` and
//! `state_digest` (64 lowercase hex digits), `time` (µs), `key_id` (16 hex digits of
//! BLAKE3 over the 32-byte public key) and `signature` (64 bytes, standard base64).
//! `docs/trust.md` has a test vector, checked by this module's tests and by an
//! independent Python check (`tests/checkpoint/verify_checkpoint.py`).

use std::io::{BufRead, Write as _};
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use toka_store_core::Hash32;
use toka_types::Timestamp;

/// The domain separator that starts the signed bytes.
pub const CHECKPOINT_DOMAIN: &[u8] = b"toka.checkpoint.v1";

/// What a checkpoint states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last `seq` covered.
    pub seq: u64,
    /// The log's chain digest at `seq`.
    pub chain_digest: Hash32,
    /// The state digest after applying `1..=seq`.
    pub state_digest: Hash32,
    /// When the node signed it (µs since the epoch).
    pub time: Timestamp,
}

impl Checkpoint {
    /// The exact bytes that are signed (see the module docs).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 32 + 32 + 8);
        out.extend_from_slice(CHECKPOINT_DOMAIN);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(self.chain_digest.as_bytes());
        out.extend_from_slice(self.state_digest.as_bytes());
        out.extend_from_slice(&self.time.as_micros().to_le_bytes());
        out
    }
}

/// A checkpoint with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    /// What it states.
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// Which key signed it.
    pub key_id: String,
    /// The Ed25519 signature, standard base64.
    pub signature: String,
}

/// Why a checkpoint, its key or its file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is not a checkpoint key.
    #[error("{path}: not a checkpoint key file: {reason}")]
    BadKey {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A line of the checkpoint file does not parse.
    #[error("{path} line {line}: not a checkpoint: {reason}")]
    BadLine {
        /// The file.
        path: String,
        /// The 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The signature does not verify with the node's public key.
    #[error(
        "checkpoint at seq {seq} is not signed by this node's checkpoint key {key_id} (it names {named})"
    )]
    BadSignature {
        /// The checkpoint's `seq`.
        seq: u64,
        /// Our key's id.
        key_id: String,
        /// The key id the checkpoint names.
        named: String,
    },
    /// No randomness to make a key.
    #[error("system randomness unavailable")]
    NoRandomness,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    alg: String,
    pkcs8_b64: String,
}

/// The node's checkpoint signing key.
pub struct CheckpointKey {
    pair: Ed25519KeyPair,
    verifier: CheckpointVerifier,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("key_id", &self.verifier.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// A key from PKCS#8 bytes.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| e.to_string())?;
        let verifier = CheckpointVerifier::from_public(pair.public_key().as_ref())?;
        Ok(Self { pair, verifier })
    }

    /// Loads the key at `path`, creating it (mode 0600) if there is none yet.
    pub fn load_or_create(path: &Path) -> Result<Self, CheckpointError> {
        let display = path.display().to_string();
        let io = |source| CheckpointError::Io {
            path: display.clone(),
            source,
        };
        if !path.exists() {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| CheckpointError::NoRandomness)?;
            let file = KeyFile {
                alg: "Ed25519".into(),
                pkcs8_b64: STANDARD.encode(pkcs8.as_ref()),
            };
            let json = serde_json::to_vec_pretty(&file).map_err(|e| CheckpointError::BadKey {
                path: display.clone(),
                reason: e.to_string(),
            })?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            crate::keys::write_private(path, &json).map_err(io)?;
        }
        Self::load(path)
    }

    /// Loads the key at `path`.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let display = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: display.clone(),
            source,
        })?;
        let bad = |reason: String| CheckpointError::BadKey {
            path: display.clone(),
            reason,
        };
        let file: KeyFile = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if file.alg != "Ed25519" {
            return Err(bad(format!("alg {:?} is not Ed25519", file.alg)));
        }
        let pkcs8 = STANDARD
            .decode(file.pkcs8_b64)
            .map_err(|e| bad(format!("pkcs8_b64: {e}")))?;
        Self::from_pkcs8(&pkcs8).map_err(bad)
    }

    /// Signs `checkpoint`.
    pub fn sign(&self, checkpoint: Checkpoint) -> SignedCheckpoint {
        let signature = self.pair.sign(&checkpoint.signed_bytes());
        SignedCheckpoint {
            checkpoint,
            key_id: self.verifier.key_id.clone(),
            signature: STANDARD.encode(signature.as_ref()),
        }
    }

    /// The public half, to check checkpoints.
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.verifier
    }
}

/// Checks checkpoints against one public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    public: Vec<u8>,
    key_id: String,
}

impl CheckpointVerifier {
    /// A verifier for a public key given as 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("an Ed25519 public key is 64 hex digits".into());
        }
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        Self::from_public(&bytes)
    }

    /// A verifier for a 32-byte Ed25519 public key.
    pub fn from_public(public: &[u8]) -> Result<Self, String> {
        if public.len() != 32 {
            return Err(format!(
                "an Ed25519 public key has 32 bytes, not {}",
                public.len()
            ));
        }
        let key_id = Hash32::of(public).to_string()[..16].to_string();
        Ok(Self {
            public: public.to_vec(),
            key_id,
        })
    }

    /// The key's id (16 hex digits of BLAKE3 over the public key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key, 64 hex digits.
    pub fn public_hex(&self) -> String {
        self.public.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signed` carries a valid signature by this key.
    pub fn verify(&self, signed: &SignedCheckpoint) -> Result<(), CheckpointError> {
        let bad = || CheckpointError::BadSignature {
            seq: signed.checkpoint.seq,
            key_id: self.key_id.clone(),
            named: signed.key_id.clone(),
        };
        let signature = STANDARD.decode(&signed.signature).map_err(|_| bad())?;
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(&signed.checkpoint.signed_bytes(), &signature)
            .map_err(|_| bad())
    }
}

/// Appends `signed` as one line to the file at `path` and syncs it.
pub fn append_to_file(path: &Path, signed: &SignedCheckpoint) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut line = serde_json::to_vec(signed).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(&line).map_err(io)?;
    file.sync_data().map_err(io)
}

/// Every checkpoint in the file at `path` (none if it does not exist), each checked
/// against `verifier`: one that does not verify is an error, never skipped.
pub fn read_file(
    path: &Path,
    verifier: &CheckpointVerifier,
) -> Result<Vec<SignedCheckpoint>, CheckpointError> {
    let display = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: display,
                source,
            });
        }
    };
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| CheckpointError::Io {
            path: display.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let signed: SignedCheckpoint =
            serde_json::from_str(&line).map_err(|e| CheckpointError::BadLine {
                path: display.clone(),
                line: i + 1,
                reason: e.to_string(),
            })?;
        verifier.verify(&signed)?;
        out.push(signed);
    }
    Ok(out)
}

/// The checkpoints a store holds (as [`SignedCheckpoint`] JSON), each checked against
/// `verifier`: one that does not parse or verify is an error, never skipped (the store
/// is where an attacker would plant one).
pub async fn read_store(
    store: &dyn toka_store_core::StorageBackend,
    verifier: &CheckpointVerifier,
) -> Result<Vec<SignedCheckpoint>, CheckpointError> {
    let stored = store.checkpoints().await.map_err(|e| CheckpointError::Io {
        path: format!("the {} store", store.driver()),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut out = Vec::with_capacity(stored.len());
    for (i, bytes) in stored.iter().enumerate() {
        let signed: SignedCheckpoint =
            serde_json::from_slice(bytes).map_err(|e| CheckpointError::BadLine {
                path: format!("the {} store's checkpoints", store.driver()),
                line: i + 1,
                reason: e.to_string(),
            })?;
        // Checkpoints of other nodes sharing the log are signed by their keys.
        if signed.key_id == verifier.key_id() {
            verifier.verify(&signed)?;
            out.push(signed);
        }
    }
    Ok(out)
}

/// Every checkpoint a log is checked against: those in the file at `path` and those
/// kept in `store`, each verified with `verifier` (either copy alone catches a cut
/// tail; an attacker must find both).
pub async fn trusted(
    path: &Path,
    store: &dyn toka_store_core::StorageBackend,
    verifier: &CheckpointVerifier,
) -> Result<Vec<SignedCheckpoint>, CheckpointError> {
    let mut all = read_file(path, verifier)?;
    all.extend(read_store(store, verifier).await?);
    Ok(all)
}

/// The checkpoint with the highest `seq` (the newest among equals).
pub fn newest(checkpoints: &[SignedCheckpoint]) -> Option<&SignedCheckpoint> {
    checkpoints.iter().rev().max_by_key(|c| c.checkpoint.seq)
}

/// When and where a runtime signs checkpoints.
#[derive(Clone)]
pub struct CheckpointSettings {
    /// The node's key.
    pub key: std::sync::Arc<CheckpointKey>,
    /// The file they are appended to.
    pub file: std::path::PathBuf,
    /// Events between checkpoints (0: only at snapshots and shutdown).
    pub every_events: u64,
    /// Seconds between checkpoints while the log grows (0: never by time).
    pub every_secs: u64,
}

impl std::fmt::Debug for CheckpointSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSettings")
            .field("file", &self.file)
            .field("every_events", &self.every_events)
            .field("every_secs", &self.every_secs)
            .finish_non_exhaustive()
    }
}

impl CheckpointSettings {
    /// The settings of `config`, loading (or creating) its key.
    pub fn from_config(config: &crate::Config) -> Result<Self, CheckpointError> {
        let c = &config.checkpoints;
        Ok(Self {
            key: std::sync::Arc::new(CheckpointKey::load_or_create(&config.resolve(&c.key_file))?),
            file: config.resolve(&c.file),
            every_events: c.every_events,
            every_secs: c.every_secs,
        })
    }

    /// The checkpoints this node trusts: its file's and its store's, each verified.
    pub async fn trusted(
        &self,
        store: &dyn toka_store_core::StorageBackend,
    ) -> Result<Vec<SignedCheckpoint>, CheckpointError> {
        trusted(&self.file, store, self.key.verifier()).await
    }
}

/// The writer's record of when it last signed.
pub(crate) struct Checkpointer {
    pub(crate) settings: CheckpointSettings,
    pub(crate) last_seq: u64,
    pub(crate) last_time: Timestamp,
}

impl Checkpointer {
    /// Whether a checkpoint is due at `head_seq` and `now` (only once the log grew).
    pub(crate) fn due(&self, head_seq: u64, now: Timestamp) -> bool {
        let s = &self.settings;
        let grown = head_seq.saturating_sub(self.last_seq);
        let secs = now.as_micros().saturating_sub(self.last_time.as_micros()) / 1_000_000;
        grown > 0
            && ((s.every_events > 0 && grown >= s.every_events)
                || (s.every_secs > 0 && secs >= s.every_secs))
    }

    /// Signs `checkpoint` and appends it to the file.
    pub(crate) fn sign(
        &mut self,
        checkpoint: Checkpoint,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let signed = self.settings.key.sign(checkpoint);
        append_to_file(&self.settings.file, &signed)?;
        self.last_seq = checkpoint.seq;
        self.last_time = checkpoint.time;
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of `docs/trust.md`: PKCS#8 v1 of the seed 32 × 0x07.
    pub(crate) fn vector() -> (CheckpointKey, Checkpoint) {
        let seed = [7u8; 32];
        let key = CheckpointKey {
            pair: Ed25519KeyPair::from_seed_unchecked(&seed).unwrap(),
            verifier: CheckpointVerifier::from_public(
                Ed25519KeyPair::from_seed_unchecked(&seed)
                    .unwrap()
                    .public_key()
                    .as_ref(),
            )
            .unwrap(),
        };
        let checkpoint = Checkpoint {
            seq: 42,
            chain_digest: Hash32([1u8; 32]),
            state_digest: Hash32([2u8; 32]),
            time: Timestamp::from_micros(1_800_000_000_000_000),
        };
        (key, checkpoint)
    }

    #[test]
    fn test_vector() {
        let (key, checkpoint) = vector();
        let bytes = checkpoint.signed_bytes();
        assert_eq!(bytes.len(), 98);
        let signed = key.sign(checkpoint);
        assert_eq!(
            key.verifier().public_hex(),
            "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
        );
        assert_eq!(signed.key_id, key.verifier().key_id());
        assert_eq!(
            signed.signature,
            "B4BhOB2S9jV8jyXiJWpAhbbeerbBcuH6ZaLQzPkwlTS/EDdpzEWDvQwcViGYGBBLbbuOcDijGLslB6vQKyr5DQ=="
        );
    }

    #[test]
    fn tampered_checkpoints_fail_and_files_round_trip() {
        let (key, checkpoint) = vector();
        let signed = key.sign(checkpoint);
        key.verifier().verify(&signed).unwrap();
        let mut forged = signed.clone();
        forged.checkpoint.seq = 41;
        assert!(key.verifier().verify(&forged).is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        append_to_file(&path, &signed).unwrap();
        let mut later = checkpoint;
        later.seq = 50;
        append_to_file(&path, &key.sign(later)).unwrap();
        let all = read_file(&path, key.verifier()).unwrap();
        assert_eq!(newest(&all).unwrap().checkpoint.seq, 50);
        // A line signed by another key is refused, not skipped.
        let other = CheckpointKey::load_or_create(&dir.path().join("other.json")).unwrap();
        append_to_file(&path, &other.sign(checkpoint)).unwrap();
        assert!(matches!(
            read_file(&path, key.verifier()),
            Err(CheckpointError::BadSignature { .. })
        ));
    }
}
