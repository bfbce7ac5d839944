"""Calls tools through Toka with the official MCP Python SDK.

Usage: calls_client.py stdio TOKA_BINARY ARG...   (token from TOKA_TOKEN)
       calls_client.py http SERVER_URL             (token from TOKA_TOKEN, as the bearer)
CALLS in the environment: a JSON list of [tool, arguments]. Prints one JSON object:
{"tools": [listed names], "results": [{"is_error": bool, "text": str}, ...]}.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(session):
    await session.initialize()
    listed = await session.list_tools()
    out = {"tools": sorted(t.name for t in listed.tools), "results": []}
    for name, args in json.loads(os.environ["CALLS"]):
        result = await session.call_tool(name, args)
        out["results"].append({"is_error": bool(result.is_error), "text": text_of(result)})
    print(json.dumps(out))


async def main(mode, rest):
    token = os.environ["TOKA_TOKEN"]
    if mode == "stdio":
        params = StdioServerParameters(
            command=rest[0], args=rest[1:], env={"TOKA_TOKEN": token, "RUST_LOG": "warn"}
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await run(session)
    else:
        import httpx2 as httpx
        from mcp.client.streamable_http import streamable_http_client

        client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        async with client:
            async with streamable_http_client(f"{rest[0]}/mcp", http_client=client) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await run(session)


asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2:]), 60))
