"""The demo web app: a page that shows which API and identity provider the browser talks to."""
import html
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>kind-parity demo</title></head>
<body>
<h1>kind-parity demo</h1>
<p>API: <a href="{api}">{api}</a></p>
<p>Issuer: <a href="{issuer}/.well-known/openid-configuration">{issuer}</a></p>
<p>Client: {client}</p>
<pre id="config">loading…</pre>
<script>fetch("{api}/config").then(r => r.json()).then(j => {{
  document.getElementById("config").textContent = JSON.stringify(j, null, 2);
}}).catch(e => {{ document.getElementById("config").textContent = "API unreachable: " + e; }});</script>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            body, status, kind = b"ok", 200, "text/plain"
        else:
            body = PAGE.format(
                api=html.escape(os.environ.get("API_URL", "")),
                issuer=html.escape(os.environ.get("OIDC_ISSUER", "")),
                client=html.escape(os.environ.get("OIDC_CLIENT_ID", "")),
            ).encode()
            status, kind = 200, "text/html; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
