"""A small agent that works through Toka over MCP, with the official MCP Python SDK.

Its job: count the words of every .txt file in the workspace and record the tally.
Every step is a Toka tool call or operation, decided by the kernel with the agent's own
token and written to the log: what the agent listed, read and reported can be shown
afterwards with `toka events`.

    pip install "mcp==2.3.*"
    TOKA_TOKEN=<the agent's token> python3 examples/mcp_agent.py [SERVER_URL]

SERVER_URL defaults to http://127.0.0.1:7878; `toka` must be on PATH (or set TOKA_BIN).
The token needs tool:fs.list, tool:fs.read and observation:emit; see the README's
"MCP" section for how to issue one.
"""

import asyncio
import json
import os
import sys

from mcp import StdioServerParameters
from mcp.client.client import Client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def call(client, tool, arguments):
    """Calls a tool through Toka; a refusal comes back as a tool error with Toka's reason."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} refused: {text_of(result)}")
    return json.loads(text_of(result))


async def main(server_url):
    # The MCP client starts `toka mcp`, which acts for the agent on the running server.
    toka = StdioServerParameters(
        command=os.environ.get("TOKA_BIN", "toka"),
        args=["mcp", "--server", server_url],
        env={"TOKA_TOKEN": os.environ["TOKA_TOKEN"], "RUST_LOG": "warn"},
    )
    async with Client(toka, cache=None) as client:
        offered = sorted(t.name for t in (await client.list_tools()).tools)
        print("tools this token may call:", ", ".join(offered))

        listing = await call(client, "fs.list", {})
        tally = {}
        for entry in listing["entries"]:
            if entry["kind"] == "file" and entry["name"].endswith(".txt"):
                read = await call(client, "fs.read", {"path": entry["name"]})
                tally[entry["name"]] = len(read.get("content", "").split())
        report = ", ".join(f"{name}: {words} words" for name, words in sorted(tally.items()))
        await call(client, "toka.observe", {"text": f"word count: {report or 'no .txt files'}"})
        print("recorded:", report or "no .txt files")


asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7878"))
