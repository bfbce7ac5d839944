//! Capability tokens for Toka: who may do what, until when, on which agents.
//!
//! A capability is a JWT (compact form, signed with HS256 or EdDSA/Ed25519 through the
//! [`jsonwebtoken`] crate; no hand-written crypto) whose [`Claims`] say:
//!
//! * `sub`: the agent that may use it (must equal the message's origin);
//! * `iat`, `exp` (and optional `nbf`): its window, at most 24 hours long;
//! * `jti`: its unique id, the handle for revocation and the only part of it that the
//!   log records;
//! * `permissions`: what it allows (see [`permissions`]), at most 100;
//! * `scope`: which agents it acts on ([`Scope`]; by default the subject and its
//!   descendants);
//! * `parent` and `lineage`: the tokens it was attenuated from, so that revoking an
//!   ancestor revokes it too.
//!
//! The main entry points:
//!
//! * [`KeySet`]: the signing keys by `kid`, one active for minting, older ones still
//!   verifying until removed (rotation).
//! * [`mint`]: sign claims with the active key.
//! * [`validate`]: a **pure** function of (token, `now`, revoked set, keys). It never
//!   reads a clock; every rejection has its own [`AuthError`] variant.
//! * [`attenuate`]: derive a child's claims from a parent's, refusing anything wider.
//! * [`Verifier`]: [`validate`] behind a verified-token cache that still honours expiry
//!   and revocation on every hit.
//!
//! What this crate does not do: generate keys or `jti`s (that needs randomness, which
//! lives in the runtime and the CLI), or decide whether an operation is allowed on a
//! given agent (that is the kernel, which knows the agent tree).
//!
//! ```
//! use toka_auth::{Claims, KeySet, SigningKey, mint, validate, permissions, NoRevocations};
//! use toka_types::EntityId;
//!
//! let keys = KeySet::new(SigningKey::hs256("k1", b"a secret of at least 32 bytes!!!")?);
//! let claims = Claims::new(EntityId::from_u128(1), "jti-1", 1_000, 2_000)
//!     .with_permissions([permissions::TASK_SCHEDULE]);
//! let token = mint(&keys, &claims)?;
//! let checked = validate(&token, 1_500, &NoRevocations, &keys)?;
//! assert_eq!(checked, claims);
//! assert!(validate(&token, 2_001, &NoRevocations, &keys).is_err()); // expired
//! # Ok::<(), toka_auth::AuthError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod attenuate;
mod cache;
mod claims;
mod error;
mod header;
mod keys;
mod mint;
pub mod permissions;
mod revocation;
mod validate;

pub use attenuate::{ChildGrant, attenuate};
pub use cache::Verifier;
pub use claims::Claims;
pub use error::AuthError;
pub use keys::{KeyAlgorithm, KeySet, SigningKey};
pub use mint::{mint, mint_with};
pub use revocation::{NoRevocations, RevocationList};
pub use toka_types::Scope;
pub use validate::validate;
