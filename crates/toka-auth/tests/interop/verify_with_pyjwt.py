"""Verifies a token minted by Toka with PyJWT. Used by tests/interop.rs.

Reads one JSON object on stdin: {"token", "alg", "key_b64"} where key_b64 is the
HS256 secret or the raw Ed25519 public key. PyJWT checks exp and iat against the
system clock, so the test mints the token for the current time. Prints the decoded claims as JSON; exits 1
if PyJWT refuses the token.
"""
import base64, json, sys
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

req = json.load(sys.stdin)
raw = base64.b64decode(req["key_b64"])
key = raw if req["alg"] == "HS256" else Ed25519PublicKey.from_public_bytes(raw)
header = jwt.get_unverified_header(req["token"])
try:
    claims = jwt.decode(req["token"], key, algorithms=[req["alg"]])
except jwt.PyJWTError as e:
    print(f"pyjwt refused: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"header": header, "claims": claims}))
