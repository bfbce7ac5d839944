"""Checks a Toka checkpoint file with an Ed25519 implementation that is not Toka's.

usage: verify_checkpoint.py PUBLIC_KEY_HEX CHECKPOINTS.jsonl

The signed bytes (docs/trust.md): b"toka.checkpoint.v1", seq as u64 little-endian,
the 32-byte chain digest, the 32-byte state digest, time (µs) as u64 little-endian.
Exit 0 and "ok N checkpoints" when every line verifies; exit 1 naming the first bad line.
"""
import base64
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def signed_bytes(c):
    return (
        b"toka.checkpoint.v1"
        + struct.pack("<Q", c["seq"])
        + bytes.fromhex(c["chain_digest"])
        + bytes.fromhex(c["state_digest"])
        + struct.pack("<Q", c["time"])
    )


def main():
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(sys.argv[1]))
    count = 0
    with open(sys.argv[2]) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            c = json.loads(line)
            try:
                key.verify(base64.b64decode(c["signature"]), signed_bytes(c))
            except InvalidSignature:
                print(f"line {number}: bad signature (seq {c['seq']})")
                sys.exit(1)
            count += 1
    print(f"ok {count} checkpoints")


main()
