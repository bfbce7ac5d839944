//! The token service: the runtime signs only what the kernel issued.
//!
//! Minting is a delegation, and a delegation is a fact: the runtime submits an
//! `IssueToken` operation (or, for the holder of the node's key, a root-token request),
//! the kernel decides it like any other operation (subject in the issuer's scope and
//! alive, permissions, scope and lifetime only narrowing, `jti` derived from the log
//! position), the `token.issued` event is committed, and only then does the runtime
//! sign exactly the claims that event records. The log never holds a token; a token
//! that was signed was always issued first.

use toka_auth::{AuthError, Claims, mint, mint_with};
use toka_types::{EntityId, KernelEvent, Message, Operation, TokenGrant, TokenRenewal};

use crate::error::SubmitError;
use crate::pipeline::{Committed, Request};
use crate::runtime::Runtime;

/// A token the kernel issued and the runtime signed.
#[derive(Debug, Clone)]
pub struct SignedToken {
    /// The compact JWT.
    pub token: String,
    /// Its claims, exactly as the `token.issued` event records them.
    pub claims: Claims,
    /// The `seq` of that event.
    pub seq: u64,
}

/// Why no token was issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The kernel refused the delegation (or the runtime could not commit it).
    #[error(transparent)]
    Refused(#[from] SubmitError),
    /// The issuance was committed but could not be signed (no active key). The
    /// recorded token is never usable, since no one holds it.
    #[error("issued at seq {seq} but not signed: {source}")]
    Signing {
        /// The `token.issued` event.
        seq: u64,
        /// Why signing failed.
        source: AuthError,
    },
}

impl Runtime {
    /// Issues a token for `grant.sub`, delegated by `origin` with its token
    /// `issuer_token` (which needs `token:issue`), and signs it once the issuance is
    /// committed.
    pub async fn issue_token(
        &self,
        origin: EntityId,
        issuer_token: &str,
        grant: TokenGrant,
    ) -> Result<SignedToken, IssueError> {
        let message = Message::new(origin, issuer_token, Operation::IssueToken(grant));
        let committed = self
            .submit(message)
            .await
            .map_err(|refused| refused.error)?;
        self.sign_issued(&committed)
    }

    /// Renews `token` (held by `origin`, its subject): a new token of the same family
    /// with the same grant (or fewer permissions) and a fresh expiry, within the chain's
    /// lifetime; signed once the issuance is committed.
    pub async fn renew_token(
        &self,
        origin: EntityId,
        token: &str,
        renewal: TokenRenewal,
    ) -> Result<SignedToken, IssueError> {
        let message = Message::new(origin, token, Operation::RenewToken(renewal));
        let committed = self
            .submit(message)
            .await
            .map_err(|refused| refused.error)?;
        self.sign_issued(&committed)
    }

    /// Issues a root token (every built-in permission, scope `*`, the configured
    /// lifetime) for the root agent. For whoever holds the node's signing key: `toka
    /// init`, `toka token root`. The issuance is in the log like any other.
    pub async fn issue_root_token(&self) -> Result<SignedToken, IssueError> {
        let request = Request::RootToken {
            ttl_secs: self.token_ttl_secs(),
        };
        let committed = self
            .submit_request(request)
            .await
            .map_err(|refused| refused.error)?;
        self.sign_issued(&committed)
    }

    /// Signs again the token `jti` the log issued (the same claims, the recorded key):
    /// for the holder of the node's key only, e.g. to act as a planner the log says
    /// this node hosts. `None` if the log never issued `jti`.
    pub fn sign_recorded(&self, jti: &str) -> Option<Result<String, AuthError>> {
        let issued = self.read(|s| s.issued_token(jti).cloned())?;
        let claims = Claims::of_issued(&issued);
        let keys = self.keys();
        Some(match &issued.kid {
            Some(kid) => mint_with(&keys, kid, &claims),
            None => mint(&keys, &claims),
        })
    }

    fn sign_issued(&self, committed: &Committed) -> Result<SignedToken, IssueError> {
        let Some((seq, KernelEvent::TokenIssued(issued))) = committed
            .numbered()
            .find(|(_, e)| matches!(e, KernelEvent::TokenIssued(_)))
        else {
            // The kernel answers IssueToken with exactly one token.issued event.
            return Err(IssueError::Signing {
                seq: committed.first_seq,
                source: AuthError::Signing {
                    reason: "the issuance produced no token.issued event".into(),
                },
            });
        };
        let claims = Claims::of_issued(issued);
        let keys = self.keys();
        // Signed with the key the kernel recorded, even if a rotation came in between.
        let signed = match &issued.kid {
            Some(kid) => mint_with(&keys, kid, &claims),
            None => mint(&keys, &claims),
        };
        let token = signed.map_err(|source| IssueError::Signing { seq, source })?;
        Ok(SignedToken { token, claims, seq })
    }
}
