//! Reading the JWT header ourselves, before the signature is checked, so that `alg:
//! none`, foreign algorithms and missing or unknown `kid`s get their own errors.
//!
//! Every token one key signs carries the same header bytes, so a [`Verifier`] keeps the
//! last header it read ([`LastHeader`]) and skips decoding it again when the next
//! token's header segment is byte for byte the same. What a header says depends on its
//! bytes alone, so the memo never changes an answer; the signature is still checked.
//!
//! [`Verifier`]: crate::Verifier

use base64_simd::URL_SAFE_NO_PAD;
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
#[derive(Debug, Clone)]
pub(crate) struct TokenHeader {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) kid: String,
}

/// The three dot-separated parts of a compact JWT, as they appear in the token.
pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signed: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

/// Splits `token` into its three parts; anything else is malformed.
pub(crate) fn split(token: &str) -> Result<Parts<'_>, AuthError> {
    let malformed = || AuthError::Malformed {
        reason: "expected three dot-separated parts".into(),
    };
    let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let (header, payload) = signed.split_once('.').ok_or_else(malformed)?;
    if payload.contains('.') {
        return Err(malformed());
    }
    Ok(Parts {
        header,
        signed,
        payload,
        signature,
    })
}

/// Decodes one part of a token (`part` names it in the error). Strict base64url: no
/// padding and no spare bits set, so each token has exactly one spelling.
pub(crate) fn decode_part(part: &str, segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode_to_vec(segment)
        .map_err(|e| AuthError::Malformed {
            reason: format!("{part} is not base64url: {e}"),
        })
}

/// Decodes and checks a header segment.
pub(crate) fn read_header(segment: &str) -> Result<TokenHeader, AuthError> {
    let bytes = decode_part("header", segment)?;
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

/// The last header segment that read well, and what it said.
#[derive(Debug, Clone, Default)]
pub(crate) struct LastHeader {
    last: Option<(Box<str>, TokenHeader)>,
}

impl LastHeader {
    /// What `segment` says: from the memo if it is the last one read, else decoded (and
    /// kept, if it reads well).
    pub(crate) fn read(&mut self, segment: &str) -> Result<&TokenHeader, AuthError> {
        let kept = match self.last.take() {
            Some((seen, header)) if *seen == *segment => (seen, header),
            _ => (segment.into(), read_header(segment)?),
        };
        Ok(&self.last.insert(kept).1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn segment(json: &str) -> String {
        URL_SAFE_NO_PAD.encode_to_string(json)
    }

    #[test]
    fn the_memo_answers_as_a_fresh_read_would_for_every_segment() {
        let hs = segment(r#"{"alg":"HS256","kid":"a"}"#);
        let none = segment(r#"{"alg":"none","kid":"a"}"#);
        let ed = segment(r#"{"alg":"EdDSA","kid":"b"}"#);
        let mut memo = LastHeader::default();
        for seg in [&hs, &hs, &none, &hs, "%%", &ed, &ed, &hs] {
            let fresh = read_header(seg).map(|h| (h.algorithm, h.kid));
            let kept = memo.read(seg).map(|h| (h.algorithm, h.kid.clone()));
            assert_eq!(format!("{fresh:?}"), format!("{kept:?}"), "segment {seg}");
        }
    }

    #[test]
    fn a_token_needs_exactly_three_parts() {
        assert!(split("a.b.c").is_ok());
        for bad in ["a.b", "a.b.c.d", "abc"] {
            assert!(
                matches!(split(bad), Err(AuthError::Malformed { .. })),
                "{bad}"
            );
        }
    }
}
