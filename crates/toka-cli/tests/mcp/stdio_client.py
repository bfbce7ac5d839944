"""Drives `toka mcp` with the official MCP Python SDK (a real MCP client).

Usage: stdio_client.py TOKA_BINARY ARG...   (ARGs: `mcp --server URL ...` or `mcp --config F`)
The token comes from TOKA_TOKEN in the environment, as an MCP client would pass it.
Prints one JSON object: the listed tool names and the outcome of each call.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def main(binary, args):
    params = StdioServerParameters(
        command=binary,
        args=args + ["--wait-secs", "1"],
        env={"TOKA_TOKEN": os.environ["TOKA_TOKEN"], "RUST_LOG": "warn"},
    )
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            out["tools"] = sorted(t.name for t in listed.tools)
            out["schemas"] = {t.name: t.input_schema for t in listed.tools}
            calls = {
                "read_ok": ("fs.read", {"path": "hello.txt"}),
                "read_escape": ("fs.read", {"path": "../toka.toml"}),
                "read_bad_input": ("fs.read", {"pth": 1}),
                "write_waits": ("fs.write", {"path": "w.txt", "content": "x"}),
                "not_permitted": ("fs.list", {}),
                "schedule": ("toka.schedule_task", {"description": "scheduled over MCP"}),
                "tasks": ("toka.list_tasks", {"state": "queued"}),
                "spawn_refused": ("toka.spawn_agent", {"name": "x"}),
                "bad_id": ("toka.read_call", {"call": "../tokens"}),
            }
            for key, (name, args) in calls.items():
                result = await session.call_tool(name, args)
                out[key] = {"is_error": bool(getattr(result, "is_error", getattr(result, "isError", False))), "text": text_of(result)}
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2:]))
