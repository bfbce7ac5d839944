#!/usr/bin/env bash
# The project's test command (the README's second command; CI runs it too).
#
# Installs what the tests need beyond the Rust toolchain, then runs every test of the
# workspace: unit, integration, property, crash and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# PyJWT: the independent JWT implementation our tokens are checked against; the
# `cryptography` package also checks signed checkpoints independently.
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    echo "test.sh: installing PyJWT for the token interoperability test" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'pyjwt>=2.8' cryptography
fi

# schemathesis: holds /openapi.json to what the server does (tests/openapi.rs). The
# minor version is pinned: its command line changes between minors.
if ! python3 -m schemathesis.cli --version 2>/dev/null | grep -q 'version 4\.32\.'; then
    echo "test.sh: installing schemathesis for the OpenAPI conformance test" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.*'
fi

# The official MCP Python SDK: a real MCP client for `toka mcp` (tests/mcp.rs). Pinned
# to a minor version: the SDK and the protocol move quickly.
if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("mcp").startswith("2.3.") else 1)' 2>/dev/null; then
    echo "test.sh: installing the MCP Python SDK for the MCP client test" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'mcp==2.3.*'
fi

# The sqlite3 command-line tool: the tamper tests edit the data as an attacker would.
if ! command -v sqlite3 >/dev/null 2>&1; then
    echo "test.sh: installing the sqlite3 command-line tool for the tamper tests" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null;
    else sudo apt-get update -qq && sudo apt-get install -y -qq sqlite3 >/dev/null; fi
fi

# A real browser for the web console's end-to-end test (tests/console.rs): Debian's
# chromium, driven by Playwright's playwright-core from npm (pinned by its lockfile;
# it downloads no browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: installing chromium for the web console test" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null;
    else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
console_tests=crates/toka-cli/tests/console
if [ ! -d "$console_tests/node_modules/playwright-core" ]; then
    echo "test.sh: installing playwright-core for the web console test" >&2
    npm ci --prefix "$console_tests" --no-audit --no-fund --silent
fi

cargo test --workspace --locked "$@"
