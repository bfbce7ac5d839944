//! Reading the JWT header ourselves, before the signature is checked, so that `alg:
//! none`, foreign algorithms and missing or unknown `kid`s get their own errors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::AuthError;
use crate::keys::KeyAlgorithm;

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// What the header of a compact JWT says, checked for shape only.
pub(crate) struct TokenHeader {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) kid: String,
}

pub(crate) fn read_header(token: &str) -> Result<TokenHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed {
            reason: "expected three dot-separated parts".into(),
        });
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| AuthError::Malformed {
            reason: format!("header is not base64url: {e}"),
        })?;
    let raw: RawHeader = serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed {
        reason: format!("header is not JSON: {e}"),
    })?;
    let algorithm = match raw.alg.as_str() {
        "HS256" => KeyAlgorithm::Hs256,
        "EdDSA" => KeyAlgorithm::EdDsa,
        other if other.eq_ignore_ascii_case("none") => return Err(AuthError::AlgNone),
        other => {
            return Err(AuthError::UnsupportedAlgorithm {
                alg: other.chars().take(32).collect(),
            });
        }
    };
    let kid = raw.kid.ok_or(AuthError::MissingKid)?;
    Ok(TokenHeader { algorithm, kid })
}
