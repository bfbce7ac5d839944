#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! Interoperability with an independent JWT implementation (PyJWT).
//!
//! * `fixture.json` holds tokens PyJWT minted (see `interop/make_fixture.py`); ours must
//!   accept them at a `now` inside their window.
//! * Tokens we mint are handed to PyJWT (`interop/verify_with_pyjwt.py`), which must
//!   accept them and read the same claims. This runs wherever Python has PyJWT; the
//!   test script installs it, and under CI a missing PyJWT fails the test.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use toka_auth::*;
use toka_types::EntityId;

fn fixture() -> Value {
    serde_json::from_str(include_str!("interop/fixture.json")).unwrap()
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn pyjwt_tokens_validate_in_toka() {
    let f = fixture();
    let now = f["claims"]["iat"].as_u64().unwrap() + 60;

    let hs = &f["hs256"];
    let keys = KeySet::new(
        SigningKey::hs256(hs["kid"].as_str().unwrap(), &b64(&hs["secret_b64"])).unwrap(),
    );
    let claims = validate(hs["token"].as_str().unwrap(), now, &NoRevocations, &keys).unwrap();
    assert_eq!(claims.sub.to_string(), f["claims"]["sub"].as_str().unwrap());
    assert_eq!(claims.jti, "pyjwt-fixture-1");
    assert!(claims.allows(permissions::TASK_SCHEDULE));
    assert!(!claims.allows(permissions::AGENT_SPAWN));

    let ed = &f["eddsa"];
    let keys = KeySet::new(
        SigningKey::ed25519_public(ed["kid"].as_str().unwrap(), &b64(&ed["public_b64"])).unwrap(),
    );
    let claims2 = validate(ed["token"].as_str().unwrap(), now, &NoRevocations, &keys).unwrap();
    assert_eq!(claims, claims2);
    // The PKCS#8 private key PyJWT used loads in ours too.
    assert!(SigningKey::ed25519_pkcs8("py-ed", &b64(&ed["pkcs8_b64"])).is_ok());

    // Outside the window they are refused like ours.
    let exp = f["claims"]["exp"].as_u64().unwrap();
    assert!(matches!(
        validate(ed["token"].as_str().unwrap(), exp, &NoRevocations, &keys),
        Err(AuthError::Expired { .. })
    ));
}

fn pyjwt_available() -> bool {
    Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pyjwt_verify(token: &str, alg: &str, key: &[u8]) -> Result<Value, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/verify_with_pyjwt.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request = serde_json::json!({"token": token, "alg": alg, "key_b64": STANDARD.encode(key)});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn toka_tokens_validate_in_pyjwt() {
    if !pyjwt_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have PyJWT: run scripts/test.sh, which installs it"
        );
        eprintln!(
            "\n*** SKIPPING toka_tokens_validate_in_pyjwt: python3 with PyJWT not found (pip install pyjwt cryptography) ***\n"
        );
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims::new(EntityId::from_u128(7), "toka-interop", now - 5, now + 600)
        .with_permissions([permissions::TASK_CLAIM, permissions::OBSERVATION_EMIT])
        .with_scope(Scope::All);

    let secret = b"toka interop secret, 32+ bytes!!";
    let hs = KeySet::new(SigningKey::hs256("toka-hs", secret).unwrap());
    let token = mint(&hs, &claims).unwrap();
    let seen = pyjwt_verify(&token, "HS256", secret).unwrap();
    assert_eq!(seen["header"]["kid"], "toka-hs");
    assert_eq!(
        serde_json::from_value::<Claims>(seen["claims"].clone()).unwrap(),
        claims
    );
    // PyJWT is a real check: a wrong key is refused.
    assert!(pyjwt_verify(&token, "HS256", b"wrong secret, also 32 bytes long").is_err());

    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let ed = KeySet::new(SigningKey::ed25519_pkcs8("toka-ed", pkcs8.as_ref()).unwrap());
    let token = mint(&ed, &claims).unwrap();
    let seen = pyjwt_verify(&token, "EdDSA", &public).unwrap();
    assert_eq!(seen["header"]["alg"], "EdDSA");
    assert_eq!(
        serde_json::from_value::<Claims>(seen["claims"].clone()).unwrap(),
        claims
    );
}
