"""A downstream MCP server (the official Python SDK) for the gateway test.

Tools: echo (returns its text), count (appends a line to COUNT_FILE: a side effect the
test counts), die (the process exits mid-call), hang (never answers).

Usage: downstream_server.py              (stdio; refuses to start while BROKEN_FILE exists)
       downstream_server.py --http PORT  (streamable HTTP on 127.0.0.1:PORT/mcp, answering
                                          only requests with `Authorization: Bearer
                                          $EXPECT_TOKEN` and `X-Team: agents`)
"""

import os
import sys
import time

broken = os.environ.get("BROKEN_FILE")
if broken and os.path.exists(broken):
    sys.exit(4)

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


if len(sys.argv) == 3 and sys.argv[1] == "--http":
    import uvicorn

    app = server.streamable_http_app()
    expected = ("Bearer " + os.environ["EXPECT_TOKEN"]).encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != expected or headers.get(b"x-team") != b"agents":
                await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"missing or wrong credentials"})
                return
        await app(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
else:
    server.run("stdio")
