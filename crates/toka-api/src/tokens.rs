//! The token routes: issue a token attenuated from the bearer's, renew the bearer's
//! own, get a root token by proving possession of the node's signing key, and read
//! what the bearer may still spend.
//!
//! Every issuance is decided by the kernel and committed (`token.issued`) before the
//! runtime signs it; these handlers only shape requests and answers.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toka_auth::Scope;
use toka_runtime::{IssueError, SignedToken};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::parse_id;
use crate::state::AppState;
use crate::views::*;

/// The permission a key-possession proof carries (never granted by the log: no
/// issued token can hold it, since no root token does).
pub const ROOT_REQUEST: &str = "token:root";
/// Longest lifetime of a key-possession proof, seconds.
pub const MAX_PROOF_SECS: u64 = 300;

fn issue_failed(e: IssueError) -> ApiError {
    match e {
        IssueError::Refused(e) => ApiError::from(e),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "signing",
            other.to_string(),
        ),
    }
}

/// The answer for a token just signed.
fn response(app: &AppState, signed: SignedToken) -> TokenResponse {
    let jti = signed.claims.jti.clone();
    TokenResponse {
        token: signed.token,
        jti: signed.claims.jti,
        sub: signed.claims.sub.to_string(),
        exp: signed.claims.exp,
        permissions: signed
            .claims
            .permissions
            .into_iter()
            .map(String::from)
            .collect(),
        seq: signed.seq,
        budget: app
            .runtime
            .read(|s| s.issued_token(&jti).map(|t| t.budget))
            .unwrap_or_default()
            .into(),
    }
}

/// Issue a token attenuated from the bearer token (needs `token:issue`). The kernel
/// decides the delegation and the log records it (`token.issued`) before it is signed.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn mint_token(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let Json(request) = body?;
    let sub = parse_id(&request.sub, "sub")?;
    let scope = request
        .scope
        .as_deref()
        .map(|s| {
            s.parse::<Scope>()
                .map_err(|e| ApiError::bad_request(format!("scope: {e}")))
        })
        .transpose()?;
    let grant = toka_types::TokenGrant {
        sub,
        permissions: request.permissions,
        scope,
        ttl_secs: request.ttl_secs,
        budget: request.budget.unwrap_or_default().into(),
    };
    let signed = app
        .runtime
        .issue_token(caller.claims.sub, &caller.token, grant)
        .await
        .map_err(issue_failed)?;
    Ok(Json(response(&app, signed)))
}

/// What the bearer's token may still spend: its own limits, what is left along its
/// chain (a parent's spending and its other children's count), and what it spent.
#[utoipa::path(get, path = "/v1/budget", tag = "tokens",
    responses((status = 200, body = BudgetLeft), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn budget(State(app): State<AppState>, caller: Caller) -> Json<BudgetLeft> {
    use toka_types::BudgetKind as K;
    app.runtime.read(|s| {
        let left = |k| toka_kernel::remaining(s, &caller.claims, k).map(|(n, _)| n);
        let spent = s.spent().of(&caller.claims.jti);
        Json(BudgetLeft {
            jti: caller.claims.jti.clone(),
            limits: s
                .issued_token(&caller.claims.jti)
                .map(|t| t.budget)
                .unwrap_or_default()
                .into(),
            left: BudgetView {
                model_tokens: left(K::ModelTokens),
                tool_calls: left(K::ToolCalls),
                spawns: left(K::Spawns),
            },
            spent: BudgetView {
                model_tokens: Some(spent.model_tokens),
                tool_calls: Some(spent.tool_calls),
                spawns: Some(spent.spawns),
            },
        })
    })
}

/// Body of `POST /v1/tokens/renew`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// Lifetime in seconds (default: the bearer token's own lifetime); cut at the end
    /// of the chain's lifetime (`auth.max_chain_lifetime_secs`).
    #[schema(minimum = 1, maximum = 86400)]
    #[serde(default, deserialize_with = "toka_types::whole::opt_u64")]
    pub ttl_secs: Option<u64>,
    /// Only these of the bearer's permissions (default: all of them).
    #[schema(max_items = 64)]
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
}

/// Renew the bearer's own token: a new token of the same renewal family (same
/// subject, scope and budget; the same permissions or fewer) with a fresh expiry,
/// recorded as `token.issued` with `renewal_of`. The renewed token may outlive its
/// issuer's; revoking any member of the family revokes all of them.
#[utoipa::path(post, path = "/v1/tokens/renew", tag = "tokens", request_body = RenewRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn renew_token(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let request: RenewRequest = crate::query::object_body(body)?;
    let renewal = toka_types::TokenRenewal {
        ttl_secs: request.ttl_secs,
        permissions: request.permissions,
    };
    renewal.validate().map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })?;
    let signed = app
        .runtime
        .renew_token(caller.claims.sub, &caller.token, renewal)
        .await
        .map_err(issue_failed)?;
    Ok(Json(response(&app, signed)))
}

/// A fresh root token for whoever holds the node's signing key, while the server
/// runs. The bearer is a *proof*: a token the caller signed with the node's key
/// (not one the log issued), carrying the permission `token:root` and living at most
/// 300 s (`toka token root --server` makes one). The root token is issued by the kernel
/// and recorded like any other.
#[utoipa::path(post, path = "/v1/tokens/root", tag = "tokens",
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 503, body = ErrorBody)), security(("bearer" = [])))]
pub async fn root_token(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenResponse>, ApiError> {
    let claims = &caller.claims;
    let issued_by_log = app.runtime.read(|s| s.issued_token(&claims.jti).is_some());
    if issued_by_log || !claims.permissions.iter().any(|p| p == ROOT_REQUEST) {
        return Err(ApiError::forbidden(
            "a root token is only for a proof of the node's signing key: a token you sign \
             yourself with `token:root` (`toka token root --server URL --config toka.toml`)",
        ));
    }
    if claims.exp.saturating_sub(claims.iat) > MAX_PROOF_SECS {
        return Err(ApiError::forbidden(format!(
            "a key-possession proof may live at most {MAX_PROOF_SECS} s; sign a fresh one"
        )));
    }
    let signed = app.runtime.issue_root_token().await.map_err(issue_failed)?;
    tracing::info!(jti = %signed.claims.jti, "root token issued to a holder of the node's key");
    Ok(Json(response(&app, signed)))
}
