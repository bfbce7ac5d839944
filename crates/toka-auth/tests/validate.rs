#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! The authorisation matrix: every way a token can be refused gets its own error.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::collections::HashSet;
use toka_auth::*;
use toka_types::EntityId;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_800_000_000;

fn hs_keys() -> KeySet {
    KeySet::new(SigningKey::hs256("hs", SECRET).unwrap())
}

fn ed_pkcs8() -> Vec<u8> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn claims() -> Claims {
    Claims::new(EntityId::from_u128(42), "jti-1", NOW - 10, NOW + 3600)
        .with_permissions([permissions::TASK_SCHEDULE])
}

/// Signs arbitrary claims with arbitrary header, bypassing our minting rules.
fn raw_token(
    alg: Algorithm,
    kid: Option<&str>,
    claims: &impl serde::Serialize,
    key: &EncodingKey,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[test]
fn valid_token_round_trips_with_both_algorithms() {
    let token = mint(&hs_keys(), &claims()).unwrap();
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()).unwrap(),
        claims()
    );

    let ed = KeySet::new(SigningKey::ed25519_pkcs8("ed", &ed_pkcs8()).unwrap());
    let token = mint(&ed, &claims()).unwrap();
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &ed).unwrap(),
        claims()
    );
}

#[test]
fn bad_signature() {
    let token = mint(&hs_keys(), &claims()).unwrap();
    // Swap in claims with more permissions, keeping the old signature.
    let wider = claims().with_permissions(permissions::ALL.iter().copied());
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wider).unwrap());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        validate(&forged, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::BadSignature)
    );

    // Signed with another secret under the same kid.
    let other = KeySet::new(SigningKey::hs256("hs", b"another secret, also 32 bytes!!!").unwrap());
    let token = mint(&other, &claims()).unwrap();
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn alg_none_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"hs","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.c2ln"),
    ] {
        assert_eq!(
            validate(&token, NOW, &NoRevocations, &hs_keys()),
            Err(AuthError::AlgNone)
        );
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"None","kid":"hs"}"#);
    assert_eq!(
        validate(
            &format!("{header}.{payload}."),
            NOW,
            &NoRevocations,
            &hs_keys()
        ),
        Err(AuthError::AlgNone)
    );
}

#[test]
fn algorithm_confusion_is_refused_both_ways() {
    let pkcs8 = ed_pkcs8();
    let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let mut keys = KeySet::new(SigningKey::ed25519_pkcs8("ed", &pkcs8).unwrap());
    keys.add(SigningKey::hs256("hs", SECRET).unwrap());

    // The classic attack: HMAC keyed with the (public) Ed25519 key, naming the Ed25519 kid.
    let forged = raw_token(
        Algorithm::HS256,
        Some("ed"),
        &claims(),
        &EncodingKey::from_secret(&public),
    );
    assert_eq!(
        validate(&forged, NOW, &NoRevocations, &keys),
        Err(AuthError::AlgorithmMismatch {
            kid: "ed".into(),
            key: "EdDSA",
            token: "HS256"
        })
    );
    // And the reverse: an EdDSA token naming the HS256 kid.
    let token = raw_token(
        Algorithm::EdDSA,
        Some("hs"),
        &claims(),
        &EncodingKey::from_ed_der(&pkcs8),
    );
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &keys),
        Err(AuthError::AlgorithmMismatch {
            kid: "hs".into(),
            key: "HS256",
            token: "EdDSA"
        })
    );
}

#[test]
fn unsupported_algorithm() {
    let token = raw_token(
        Algorithm::HS512,
        Some("hs"),
        &claims(),
        &EncodingKey::from_secret(SECRET),
    );
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::UnsupportedAlgorithm {
            alg: "HS512".into()
        })
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let token = mint(&hs_keys(), &claims()).unwrap();
    let c = claims();
    assert_eq!(
        validate(&token, c.exp, &NoRevocations, &hs_keys()),
        Err(AuthError::Expired {
            exp: c.exp,
            now: c.exp
        })
    );
    assert!(validate(&token, c.exp - 1, &NoRevocations, &hs_keys()).is_ok());
    assert_eq!(
        validate(&token, c.iat - 1, &NoRevocations, &hs_keys()),
        Err(AuthError::NotYetValid {
            valid_from: c.iat,
            now: c.iat - 1
        })
    );
    let mut later = claims();
    later.nbf = Some(NOW + 100);
    let token = mint(&hs_keys(), &later).unwrap();
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::NotYetValid {
            valid_from: NOW + 100,
            now: NOW
        })
    );
}

#[test]
fn lifetime_over_a_day() {
    let mut long = claims();
    long.exp = long.iat + 24 * 3600 + 1;
    assert!(matches!(
        mint(&hs_keys(), &long),
        Err(AuthError::LifetimeTooLong { .. })
    ));
    let token = raw_token(
        Algorithm::HS256,
        Some("hs"),
        &long,
        &EncodingKey::from_secret(SECRET),
    );
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::LifetimeTooLong {
            lifetime: 24 * 3600 + 1,
            limit: 24 * 3600
        })
    );
}

#[test]
fn too_many_permissions() {
    let many = claims().with_permissions((0..101).map(|i| format!("ext:p{i}")));
    assert!(matches!(
        mint(&hs_keys(), &many),
        Err(AuthError::TooManyPermissions { .. })
    ));
    let token = raw_token(
        Algorithm::HS256,
        Some("hs"),
        &many,
        &EncodingKey::from_secret(SECRET),
    );
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::TooManyPermissions {
            count: 101,
            limit: 100
        })
    );
    let hundred = claims().with_permissions((0..100).map(|i| format!("ext:p{i}")));
    assert!(
        validate(
            &mint(&hs_keys(), &hundred).unwrap(),
            NOW,
            &NoRevocations,
            &hs_keys()
        )
        .is_ok()
    );
}

#[test]
fn token_over_8_kib() {
    let huge = "a".repeat(8 * 1024 + 1);
    assert_eq!(
        validate(&huge, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::TokenTooLarge {
            actual: 8193,
            limit: 8192
        })
    );
}

#[test]
fn unknown_and_missing_kid() {
    let other = KeySet::new(SigningKey::hs256("elsewhere", SECRET).unwrap());
    let token = mint(&other, &claims()).unwrap();
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::UnknownKid {
            kid: "elsewhere".into()
        })
    );
    let token = raw_token(
        Algorithm::HS256,
        None,
        &claims(),
        &EncodingKey::from_secret(SECRET),
    );
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::MissingKid)
    );
}

#[test]
fn revoked_jti_and_revoked_ancestor() {
    let token = mint(&hs_keys(), &claims()).unwrap();
    let revoked: HashSet<String> = ["jti-1".to_string()].into();
    assert_eq!(
        validate(&token, NOW, &revoked, &hs_keys()),
        Err(AuthError::Revoked {
            jti: "jti-1".into()
        })
    );

    let grant = ChildGrant {
        sub: EntityId::from_u128(43),
        jti: "child".into(),
        iat: NOW,
        exp: NOW + 60,
        permissions: vec![permissions::TASK_SCHEDULE.into()],
        scope: None,
    };
    let child = attenuate(&claims(), grant, |_, _| true).unwrap();
    let child_token = mint(&hs_keys(), &child).unwrap();
    assert!(validate(&child_token, NOW, &NoRevocations, &hs_keys()).is_ok());
    assert_eq!(
        validate(&child_token, NOW, &revoked, &hs_keys()),
        Err(AuthError::Revoked {
            jti: "jti-1".into()
        })
    );
}

#[test]
fn malformed_tokens() {
    for bad in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig"] {
        let err = validate(bad, NOW, &NoRevocations, &hs_keys()).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed { .. } | AuthError::MissingKid),
            "{bad}: {err:?}"
        );
    }
    // A correctly signed token whose claims are not Toka claims.
    let token = raw_token(
        Algorithm::HS256,
        Some("hs"),
        &serde_json::json!({"sub": "nobody"}),
        &EncodingKey::from_secret(SECRET),
    );
    assert!(matches!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn weak_keys_are_refused() {
    assert!(matches!(
        SigningKey::hs256("k", b"short"),
        Err(AuthError::InvalidKey { .. })
    ));
    assert!(matches!(
        SigningKey::ed25519_pkcs8("k", b"not der"),
        Err(AuthError::InvalidKey { .. })
    ));
    assert!(matches!(
        SigningKey::ed25519_public("k", &[0u8; 31]),
        Err(AuthError::InvalidKey { .. })
    ));
    assert!(matches!(
        SigningKey::hs256("", SECRET),
        Err(AuthError::InvalidKey { .. })
    ));
}

#[test]
fn key_rotation() {
    let mut keys = hs_keys();
    let old = mint(&keys, &claims()).unwrap();
    keys.rotate_to(SigningKey::ed25519_pkcs8("ed-2", &ed_pkcs8()).unwrap())
        .unwrap();
    let new = mint(&keys, &claims()).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(),
        Some("ed-2")
    );
    assert!(
        validate(&old, NOW, &NoRevocations, &keys).is_ok(),
        "old key still verifies"
    );
    assert!(validate(&new, NOW, &NoRevocations, &keys).is_ok());
    assert!(keys.remove("hs"));
    assert_eq!(
        validate(&old, NOW, &NoRevocations, &keys),
        Err(AuthError::UnknownKid { kid: "hs".into() })
    );
    assert!(keys.remove("ed-2"));
    assert_eq!(mint(&keys, &claims()), Err(AuthError::NoActiveKey));
}

#[test]
fn verify_only_keys_cannot_mint() {
    let pkcs8 = ed_pkcs8();
    let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let signer = KeySet::new(SigningKey::ed25519_pkcs8("ed", &pkcs8).unwrap());
    let verifier = KeySet::new(SigningKey::ed25519_public("ed", &public).unwrap());
    let token = mint(&signer, &claims()).unwrap();
    assert!(validate(&token, NOW, &NoRevocations, &verifier).is_ok());
    assert_eq!(mint(&verifier, &claims()), Err(AuthError::NoActiveKey));
}

#[test]
fn cache_honours_expiry_revocation_and_key_changes() {
    let mut verifier = Verifier::new(hs_keys());
    let token = mint(&hs_keys(), &claims()).unwrap();
    assert!(verifier.verify(&token, NOW, &NoRevocations).is_ok());
    assert_eq!(verifier.cached(), 1);
    // Cache hit, but expired now.
    assert!(matches!(
        verifier.verify(&token, claims().exp, &NoRevocations),
        Err(AuthError::Expired { .. })
    ));
    // Cache hit, but revoked now.
    let revoked: HashSet<String> = ["jti-1".to_string()].into();
    assert!(matches!(
        verifier.verify(&token, NOW, &revoked),
        Err(AuthError::Revoked { .. })
    ));
    // Key removed: the cache is emptied and the token no longer verifies.
    assert!(verifier.remove_key("hs"));
    assert_eq!(verifier.cached(), 0);
    assert!(matches!(
        verifier.verify(&token, NOW, &NoRevocations),
        Err(AuthError::UnknownKid { .. })
    ));
    // Bad tokens are never cached.
    assert_eq!(verifier.cached(), 0);
}

#[test]
fn cache_is_bounded() {
    let mut verifier = Verifier::with_capacity(hs_keys(), 4);
    for i in 0..10 {
        let mut c = claims();
        c.jti = format!("j{i}");
        let token = mint(&hs_keys(), &c).unwrap();
        verifier.verify(&token, NOW, &NoRevocations).unwrap();
        assert!(verifier.cached() <= 4);
    }
}

/// The cache finds a token by its signature's end; a forgery that keeps a cached
/// token's signature under other claims lands on the same slot and must still be
/// refused, and must not evict or disturb the genuine token's entry for long.
#[test]
fn a_forgery_with_a_cached_tokens_signature_is_refused() {
    let mut verifier = Verifier::new(hs_keys());
    let token = mint(&hs_keys(), &claims()).unwrap();
    assert!(verifier.verify(&token, NOW, &NoRevocations).is_ok());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let (header, _) = signed.split_once('.').unwrap();
    let mut forged_claims = claims();
    forged_claims.sub = EntityId::from_u128(0xbad);
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
    let forged = format!("{header}.{forged_payload}.{signature}");
    assert_eq!(
        verifier.verify(&forged, NOW, &NoRevocations),
        Err(AuthError::BadSignature)
    );
    // The genuine token still verifies, with its own claims.
    assert_eq!(
        verifier.verify(&token, NOW, &NoRevocations).map(|c| c.sub),
        Ok(claims().sub)
    );
    assert_eq!(verifier.cached(), 1);
}

/// A signed token has one spelling: the signature and the claims must be canonical
/// base64url, so no second string carries the same signature (a verified-token cache
/// and an audit keyed by the token see one token, not several).
#[test]
fn a_token_has_one_spelling() {
    let token = mint(&hs_keys(), &claims()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let (header, payload) = signed.split_once('.').unwrap();
    // The 32-byte tag is 43 characters; the last carries 2 spare bits, which must be 0.
    let last = signature.chars().last().unwrap();
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = ALPHABET.find(last).unwrap();
    let spare = &ALPHABET[index ^ 1..=index ^ 1];
    let respelled = |h: &str, p: &str, s: &str| format!("{h}.{p}.{s}");
    let variants = [
        respelled(header, payload, &format!("{}{spare}", &signature[..42])),
        respelled(header, payload, &format!("{signature}=")),
        respelled(header, &format!("{payload}="), signature),
        respelled(
            header,
            &payload.replace('-', "+").replace('_', "/"),
            signature,
        ),
    ];
    assert_eq!(
        validate(&token, NOW, &NoRevocations, &hs_keys()),
        Ok(claims())
    );
    for variant in variants {
        if variant == token {
            continue; // the payload had no '-' or '_' to respell
        }
        let refused = validate(&variant, NOW, &NoRevocations, &hs_keys());
        assert!(
            matches!(
                refused,
                Err(AuthError::Malformed { .. } | AuthError::BadSignature)
            ),
            "{variant}: {refused:?}"
        );
    }
}
