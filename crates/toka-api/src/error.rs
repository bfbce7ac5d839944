//! [`ApiError`]: every failure as a status code and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use toka_kernel::KernelError;
use toka_runtime::SubmitError;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human-readable message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `permission_denied`.
    pub code: String,
    /// What to do about it.
    pub message: String,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The code.
    pub code: &'static str,
    /// The message.
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client when to retry.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after = Some(ms.div_ceil(1000).max(1));
        self
    }

    /// 401: no or bad bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: the token does not allow it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `internal`: something that should not happen did.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_body"
        };
        Self::new(status, code, rejection.body_text())
    }
}

impl From<KernelError> for ApiError {
    /// The status says which kind of refusal it is; the code names the exact rule
    /// ([`KernelError::code`]).
    fn from(e: KernelError) -> Self {
        use KernelError as K;
        let status = match &e {
            K::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            K::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            K::OriginMismatch { .. }
            | K::PermissionDenied { .. }
            | K::OutOfScope { .. }
            | K::Delegation(_)
            | K::RevokeOutOfScope { .. }
            | K::CannotRevokeAncestor { .. }
            | K::UnknownTokenNeedsGlobalScope { .. }
            | K::SelfApproval { .. } => StatusCode::FORBIDDEN,
            K::ToolInputInvalid { .. } | K::ReasonRequired { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            K::IdempotencyKeyReused { .. } => StatusCode::CONFLICT,
            K::UnknownAgent(_)
            | K::UnknownTask(_)
            | K::UnknownExtension { .. }
            | K::UnknownTool { .. }
            | K::UnknownCall(_) => StatusCode::NOT_FOUND,
            K::QueueFull { .. } | K::TooManyOpenCalls { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::CONFLICT,
        };
        let mut message = e.to_string();
        // A misspelt permission is not an escalation the caller can fix by asking
        // its issuer: say what it is.
        if let K::Delegation(toka_auth::AuthError::PermissionEscalation { permission }) = &e
            && !toka_auth::permissions::is_known(permission)
        {
            message = match toka_auth::permissions::closest(permission) {
                Some(near) => {
                    format!("there is no permission {permission:?}; did you mean {near:?}?")
                }
                None => format!(
                    "there is no permission {permission:?}; the permissions are {}, tool:<name> and ext:<family>",
                    toka_auth::permissions::ALL.join(", ")
                ),
            };
        }
        Self::new(status, e.code(), message)
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        match e {
            SubmitError::Rejected(k) => k.into(),
            SubmitError::RateLimited { retry_after_ms, .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                    .retry_after_ms(retry_after_ms)
            }
            SubmitError::Busy => Self::new(unavailable, "busy", e.to_string()).retry_after_ms(1000),
            SubmitError::Stopped => Self::new(unavailable, "stopped", e.to_string()),
            SubmitError::Unavailable { retry_after_ms, .. } => {
                Self::new(unavailable, "unavailable", e.to_string()).retry_after_ms(retry_after_ms)
            }
            SubmitError::Storage(_) => {
                Self::new(unavailable, "storage", e.to_string()).retry_after_ms(1000)
            }
            SubmitError::CommitUnknown(_) => {
                Self::new(unavailable, "commit_unknown", e.to_string()).retry_after_ms(1000)
            }
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}
