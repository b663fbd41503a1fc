"""The demo API: health, the contract values it was started with (never the secrets), and
`/me`, which accepts only an access token its issuer signed for it.

Tokens are verified for real with the standard library alone (the demo image has no packages):
RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 section 8.2.2) against the issuer's JWKS, found
through its discovery document; then the issuer, the audience, expiry and not-before.
"""
import base64
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUBLIC = ["OIDC_ISSUER", "OIDC_AUDIENCE", "WEB_ORIGIN", "LOG_LEVEL"]
SECRET = ["DATABASE_URL", "REDIS_URL", "SESSION_KEY"]
# DER of DigestInfo for SHA-256 (RFC 8017 section 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
LEEWAY = 30


class InvalidToken(Exception):
    """Why a token is refused; the message goes back in WWW-Authenticate."""


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Keys:
    """The issuer's signing keys by `kid`, fetched again when a token names an unknown one."""

    def __init__(self, issuer):
        self.issuer = issuer
        self.keys = {}
        self.lock = threading.Lock()
        self.fetched = 0.0

    def _get(self, url):
        # SSL_CERT_FILE (set by kind-parity to the environment's CA) is honoured by OpenSSL.
        with urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context()) as r:
            return json.load(r)

    def key(self, kid):
        with self.lock:
            if kid not in self.keys and time.time() - self.fetched > 10:
                discovery = self._get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                jwks = self._get(discovery["jwks_uri"])
                self.keys = {k["kid"]: k for k in jwks.get("keys", []) if k.get("kty") == "RSA"}
                self.fetched = time.time()
            if kid not in self.keys:
                raise InvalidToken(f"no key {kid!r} in the issuer's JWKS")
            return self.keys[kid]


def verify(token, keys, issuer, audience):
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(b64url(header_b64))
        claims = json.loads(b64url(payload_b64))
        signature = int.from_bytes(b64url(signature_b64), "big")
    except ValueError as e:
        raise InvalidToken(f"not a JWS compact token: {e}") from e
    if header.get("alg") != "RS256":
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not RS256")
    jwk = keys.key(header.get("kid"))
    n = int.from_bytes(b64url(jwk["n"]), "big")
    e = int.from_bytes(b64url(jwk["e"]), "big")
    size = (n.bit_length() + 7) // 8
    if signature >= n:
        raise InvalidToken("bad signature")
    encoded = pow(signature, e, n).to_bytes(size, "big")
    digest = SHA256_DIGEST_INFO + hashlib.sha256(f"{header_b64}.{payload_b64}".encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    if not hmac.compare_digest(encoded, expected):
        raise InvalidToken("bad signature")
    if claims.get("iss") != issuer:
        raise InvalidToken(f"issuer {claims.get('iss')!r} is not {issuer!r}")
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidToken(f"audience {aud!r} does not include {audience!r}")
    now = time.time()
    if claims.get("exp", 0) < now - LEEWAY:
        raise InvalidToken("expired")
    if claims.get("nbf", 0) > now + LEEWAY:
        raise InvalidToken("not yet valid")
    return claims


KEYS = Keys(os.environ.get("OIDC_ISSUER", ""))


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
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
        elif self.path == "/me":
            self._me()
        else:
            self._send(404, {"error": "not found"})

    def _me(self):
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            self._send(401, {"error": "a bearer token is required"}, [("WWW-Authenticate", 'Bearer realm="api"')])
            return
        try:
            claims = verify(token, KEYS, os.environ["OIDC_ISSUER"], os.environ["OIDC_AUDIENCE"])
        except InvalidToken as e:
            challenge = f'Bearer realm="api", error="invalid_token", error_description="{e}"'
            self._send(401, {"error": "invalid_token", "reason": str(e)}, [("WWW-Authenticate", challenge)])
            return
        except OSError as e:
            self._send(503, {"error": f"cannot reach the issuer's keys: {e}"})
            return
        self._send(200, {"sub": claims.get("sub"), "username": claims.get("preferred_username"), "issuer": claims["iss"]})

    def log_message(self, fmt, *args):
        if os.environ.get("LOG_LEVEL") == "debug":
            super().log_message(fmt, *args)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
