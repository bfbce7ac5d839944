//! Keeps a hosted agent's token alive: renews it (`renew_token`) once two thirds of
//! its lifetime have passed, so an agent runs for as long as its chain may last
//! without a restart. The agent reads the current token through its [`TokenCell`].
//!
//! A renewal the kernel refuses (the chain reached its lifetime, the token was
//! revoked) is logged and not retried until the token's next window: the agent then
//! fails on its own token, as it would have without a renewer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use toka_types::{EntityId, TokenRenewal};

use crate::runtime::Runtime;

/// Shortest pause between two renewal attempts.
const MIN_PAUSE: Duration = Duration::from_secs(1);

/// The current token of a hosted agent, renewed in place.
#[derive(Debug, Clone)]
pub struct TokenCell(Arc<RwLock<String>>);

impl TokenCell {
    /// A cell holding `token`.
    pub fn new(token: String) -> Self {
        Self(Arc::new(RwLock::new(token)))
    }

    /// The current token.
    pub fn get(&self) -> String {
        self.0.read().map(|t| t.clone()).unwrap_or_default()
    }

    fn set(&self, token: String) {
        if let Ok(mut current) = self.0.write() {
            *current = token;
        }
    }
}

/// When to renew a token issued at `iat` that expires at `exp`, seen at `now`
/// (seconds): two thirds into its life, and not before now.
fn renew_in(iat: u64, exp: u64, now: u64) -> Duration {
    let at = iat + exp.saturating_sub(iat) * 2 / 3;
    Duration::from_secs(at.saturating_sub(now)).max(MIN_PAUSE)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Renews the token in `cell` for agent `id` until the task is aborted.
pub(crate) async fn keep_renewed(runtime: Runtime, id: EntityId, cell: TokenCell) {
    loop {
        let token = cell.get();
        let now = now_secs();
        let claims = runtime.read(|s| toka_auth::validate(&token, now, s, &runtime.keys()));
        let Ok(claims) = claims else {
            // Expired or revoked: nothing to renew from.
            tracing::warn!(agent = %id, "hosted agent's token is no longer valid; not renewing");
            return;
        };
        tokio::time::sleep(renew_in(claims.iat, claims.exp, now)).await;
        match runtime
            .renew_token(id, &token, TokenRenewal::default())
            .await
        {
            Ok(signed) => {
                tracing::info!(agent = %id, jti = %signed.claims.jti, exp = signed.claims.exp, "renewed the hosted agent's token");
                cell.set(signed.token);
            }
            Err(e) => {
                tracing::warn!(agent = %id, error = %e, "could not renew the hosted agent's token");
                // Try again halfway to its expiry (or stop once it expired).
                let left = claims.exp.saturating_sub(now_secs());
                if left == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(left / 2).max(MIN_PAUSE)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_two_thirds_into_the_life() {
        assert_eq!(renew_in(1000, 4000, 1000), Duration::from_secs(2000));
        assert_eq!(renew_in(1000, 4000, 2500), Duration::from_secs(500));
        assert_eq!(renew_in(1000, 4000, 3900), MIN_PAUSE);
    }
}
