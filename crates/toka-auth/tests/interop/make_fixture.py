"""Produces fixture.json: tokens minted by PyJWT, an implementation independent of ours.

Run once; the output is checked in so the Rust test needs no Python to read it:
    python3 make_fixture.py > fixture.json
"""
import base64, json, secrets
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

IAT = 1_700_000_000
claims = {
    "sub": "0192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9d0e",
    "iat": IAT,
    "exp": IAT + 3600,
    "jti": "pyjwt-fixture-1",
    "permissions": ["task:schedule", "observation:emit"],
}
secret = secrets.token_bytes(32)
hs = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "py-hs"})

key = Ed25519PrivateKey.generate()
pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
ed = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "py-ed"})

b64 = lambda b: base64.b64encode(b).decode()
print(json.dumps({
    "generator": f"PyJWT {jwt.__version__}",
    "claims": claims,
    "hs256": {"kid": "py-hs", "secret_b64": b64(secret), "token": hs},
    "eddsa": {"kid": "py-ed", "pkcs8_b64": b64(pkcs8), "public_b64": b64(public), "token": ed},
}, indent=2))
