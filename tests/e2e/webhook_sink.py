"""A webhook receiver for end-to-end tests: every POST is appended to --out as one JSON line

  {"path", "content_type", "body" (parsed JSON, or the raw text), "status" (what it answered)}

  --port N      listen on 127.0.0.1:N
  --out FILE    where the JSON lines go
  --fail N      answer 500 to the first N requests (to test retries), 204 after that

Runs until SIGTERM or SIGINT.
"""
import argparse
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"seen": 0, "fail": 0, "out": None}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        with LOCK:
            STATE["seen"] += 1
            status = 500 if STATE["seen"] <= STATE["fail"] else 204
            with open(STATE["out"], "a") as f:
                f.write(json.dumps({"path": self.path,
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": body, "status": status}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fail", type=int, default=0)
    args = p.parse_args()
    STATE["fail"] = args.fail
    STATE["out"] = args.out
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
