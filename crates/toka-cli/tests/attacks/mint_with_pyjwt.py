"""Mints a token with PyJWT, an independent JWT library, from a Toka node's key file.

Reads one JSON object on stdin: {"key_file": PATH, "claims": {...}}. Prints the
compact token. The key file is the node's keyring (`keys/signing.json`): {"active",
"keys": [...]}, each key {"kid", "alg", "secret_b64"} for HS256 or {"kid", "alg",
"pkcs8_b64"} for EdDSA. An attacker who
holds the key can mint anything; the tests use it to show that the kernel's rules
hold whatever minted the token.
"""
import base64
import json
import sys

import jwt
from cryptography.hazmat.primitives.serialization import load_der_private_key

request = json.load(sys.stdin)
with open(request["key_file"]) as f:
    key_file = json.load(f)
if "keys" in key_file:  # a keyring: sign with its active key
    key_file = next(k for k in key_file["keys"] if k["kid"] == key_file["active"])
if key_file["alg"] == "HS256":
    key = base64.b64decode(key_file["secret_b64"])
else:
    key = load_der_private_key(base64.b64decode(key_file["pkcs8_b64"]), password=None)
token = jwt.encode(
    request["claims"],
    key,
    algorithm=key_file["alg"],
    headers={"kid": key_file["kid"], "typ": "JWT"},
)
print(token)
