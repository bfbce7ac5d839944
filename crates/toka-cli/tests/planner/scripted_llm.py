"""A scripted OpenAI-compatible Chat Completions server: the stand-in for a model
provider in the CLI's planner tests (we do not own one).

Usage: scripted_llm.py SCRIPT_JSON LOG_FILE
SCRIPT_JSON is a list of assistant messages, answered in order. Every request body is
appended to LOG_FILE as one JSON line. Prints the port it listens on, then serves.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

script = json.load(open(sys.argv[1]))
log_path = sys.argv[2]
lock = threading.Lock()
served = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global served
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = json.loads(body)
        with lock:
            with open(log_path, "a") as log:
                log.write(json.dumps(request, sort_keys=True) + "\n")
            if self.path != "/v1/chat/completions" or served >= len(script):
                self.send_response(410)
                self.end_headers()
                return
            message = script[served]
            served += 1
        answer = {
            "id": f"chatcmpl-{served}",
            "object": "chat.completion",
            "model": request.get("model", "scripted"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
