"""The demo application behind intermission: a tiny HTTP server that says
hello and answers /health, so the demo shows proxying and health checks.

  python3 examples/demo_backend.py --port 8081
"""
import argparse
import http.server
import json
import socket
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health":
            body, ctype = b"ok\n", "text/plain"
        else:
            body = f"""<!doctype html><meta charset="utf-8"><title>Demo app</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Hello from the demo app</h1>
<p>This page came from the application at {socket.gethostname()} through intermission.</p>
<p>Path: <code>{self.path}</code>, time: {time.strftime('%H:%M:%S')}</p>
<p>Switch maintenance on through the admin API (see the demo's output) and visitors get the branded page instead.</p>
<pre>{json.dumps({k: v for k, v in self.headers.items() if k.lower().startswith('x-forwarded') or k.lower() == 'via'}, indent=2)}</pre>
""".encode()
            ctype = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
