#!/usr/bin/env bash
# The project's test command (the README's second command; CI runs it too).
#
# Installs what the tests need beyond the Rust toolchain, then runs every test of the
# workspace: unit, integration, property, crash and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# PyJWT: the independent JWT implementation our tokens are checked against.
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    echo "test.sh: installing PyJWT for the token interoperability test" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'pyjwt>=2.8' cryptography
fi

cargo test --workspace --locked "$@"
