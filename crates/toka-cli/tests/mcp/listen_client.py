"""Waits for `notifications/tools/list_changed` through Toka with the official MCP
Python SDK, on either protocol generation:

* modern (2026-07-28): `Client.listen(tools_list_changed=True)`, a `subscriptions/listen`
  stream;
* legacy (the initialize handshake): notifications on the session, seen by the
  client's `message_handler`.

Usage: listen_client.py modern|legacy stdio TOKA_BINARY ARG...   (token from TOKA_TOKEN)
       listen_client.py modern|legacy http SERVER_URL            (token as the bearer)
Prints one JSON line per step: {"step": "listening", "tools": [...]} once listening,
then {"step": "changed", "tools": [...]} (or "error") after each notification. Exits
after CHANGES changes (default 3) or 90 s.
"""

import asyncio
import json
import os
import sys

from mcp import StdioServerParameters
from mcp.client.client import Client


def say(**fields):
    print(json.dumps(fields), flush=True)


async def names(client):
    try:
        listed = await client.list_tools()
        return {"tools": sorted(t.name for t in listed.tools)}
    except Exception as e:  # a refused token: the error, as the client sees it
        return {"error": f"{type(e).__name__}: {e}"}


def is_list_changed(message):
    inner = getattr(message, "root", message)
    return getattr(inner, "method", None) == "notifications/tools/list_changed"


async def main(proto, mode, rest):
    token = os.environ["TOKA_TOKEN"]
    wanted = int(os.environ.get("CHANGES", "3"))
    if mode == "stdio":
        server = StdioServerParameters(
            command=rest[0], args=rest[1:], env={"TOKA_TOKEN": token, "RUST_LOG": "warn"}
        )
        http = None
    else:
        import httpx2 as httpx
        from mcp.client.streamable_http import streamable_http_client

        http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=90)
        server = streamable_http_client(f"{rest[0]}/mcp", http_client=http)

    changes = asyncio.Queue()

    async def on_message(message):
        if is_list_changed(message):
            changes.put_nowait(True)

    if proto == "modern":
        async with Client(server, cache=None) as client:
            async with client.listen(tools_list_changed=True) as sub:
                say(step="listening", protocol=client.session.protocol_version, **(await names(client)))
                seen = 0
                async for _event in sub:
                    seen += 1
                    say(step="changed", **(await names(client)))
                    if seen >= wanted:
                        break
    else:
        async with Client(server, cache=None, mode="legacy", message_handler=on_message) as client:
            say(step="listening", protocol=client.session.protocol_version, **(await names(client)))
            for _ in range(wanted):
                await changes.get()
                say(step="changed", **(await names(client)))
    if http is not None:
        await http.aclose()


try:
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], sys.argv[3:]), 90))
except TimeoutError:
    say(step="timeout")
    sys.exit(1)
