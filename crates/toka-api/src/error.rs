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
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
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

    /// 400.
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
        (self.status, Json(body)).into_response()
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
            | K::UnknownTokenNeedsGlobalScope { .. } => StatusCode::FORBIDDEN,
            K::UnknownAgent(_) | K::UnknownTask(_) | K::UnknownExtension { .. } => {
                StatusCode::NOT_FOUND
            }
            K::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected(k) => k.into(),
            SubmitError::RateLimited { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            }
            SubmitError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
            SubmitError::Stopped => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "stopped", e.to_string())
            }
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                other.to_string(),
            ),
        }
    }
}
