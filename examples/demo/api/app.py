"""The demo API: health, and the contract values it was started with (never the secrets)."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUBLIC = ["OIDC_ISSUER", "WEB_ORIGIN", "LOG_LEVEL"]
SECRET = ["DATABASE_URL", "REDIS_URL", "SESSION_KEY"]


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", os.environ.get("WEB_ORIGIN", "*"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            missing = [k for k in PUBLIC + SECRET if not os.environ.get(k)]
            self._send(503 if missing else 200, {"status": "missing env" if missing else "ok", "missing": missing})
        elif self.path in ("/", "/config"):
            config = {k: os.environ.get(k) for k in PUBLIC}
            config.update({k: bool(os.environ.get(k)) for k in SECRET})
            self._send(200, {"service": "api", "config": config})
        else:
            self._send(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        if os.environ.get("LOG_LEVEL") == "debug":
            super().log_message(fmt, *args)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
