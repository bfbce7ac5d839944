"""Drives /mcp on `toka serve` with the official MCP Python SDK's streamable HTTP
client, the bearer token on every request.

Usage: http_client.py SERVER_URL TOKEN
Prints one JSON object: the listed tools and the outcome of a call.
"""

import asyncio
import json
import sys

import httpx2 as httpx  # the SDK's own HTTP client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def main(server, token):
    client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    out = {}
    async with client:
        async with streamable_http_client(f"{server}/mcp", http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                out["tools"] = sorted(t.name for t in listed.tools)
                result = await session.call_tool("fs.read", {"path": "hello.txt"})
                out["read"] = {"is_error": bool(getattr(result, "is_error", False)), "text": text_of(result)}
                result = await session.call_tool("fs.read", {"path": "/etc/passwd"})
                out["escape"] = {"is_error": bool(getattr(result, "is_error", False)), "text": text_of(result)}
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
