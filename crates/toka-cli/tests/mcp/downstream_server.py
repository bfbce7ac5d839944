"""A downstream MCP server (the official Python SDK) for the gateway test.

Tools: echo (returns its text), count (appends a line to COUNT_FILE: a side effect the
test counts), die (the process exits mid-call), hang (never answers).
"""

import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("downstream")


@server.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Count one run in the counter file.")
def count() -> str:
    with open(os.environ["COUNT_FILE"], "a") as f:
        f.write("run\n")
    return "counted"


@server.tool(description="Exit the server process mid-call.")
def die() -> str:
    os._exit(3)


@server.tool(description="Never answer.")
def hang() -> str:
    time.sleep(3600)
    return "late"


server.run("stdio")
