"""A test OIDC issuer: keys generated in the test, its discovery document and JWKS served on 127.0.0.1.

``mode`` makes the JWKS endpoint misbehave: ``"hang"`` (never answers until stopped), ``"garbage"``
(answers 200 with something that is not a key set), ``"trickle"`` (answers 200 and the real key set
one byte every ``trickle_seconds``: each read is quick, the whole takes minutes) or
``"trickle-headers"`` (the same with the status line and headers). ``discovery_mode`` does the same to
the discovery document.

For a browser's sign-in it also plays the provider's part of the authorization code flow with PKCE
(RFC 7636, S256 only): ``/authorize`` signs in ``sign_in_as`` at once and redirects back with a one-time
code; ``/token`` exchanges the code (checking client, redirect URI and verifier) or a refresh token
(rotated on every use) for an id token signed with ``sign_in_kid`` that lives ``id_token_seconds``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class Issuer:
    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.published: list[str] = []
        self.mode = "ok"
        self.discovery_mode = "ok"
        self.trickle_seconds = 0.2
        self.jwks_answered = 0  # key sets sent in full
        self.jwks_requests = 0
        self.discovery_requests = 0
        # The sign-in flow: who signs in, with which key, for how long; what the token endpoint was asked.
        self.sign_in_as: dict[str, Any] = {}
        self.sign_in_kid = ""
        self.id_token_seconds = 600
        self.grants: list[str] = []
        self._codes: dict[str, dict[str, str]] = {}
        self._refresh_tokens: set[str] = set()
        self._stop = threading.Event()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    issuer.discovery_requests += 1
                    body = json.dumps(issuer.discovery()).encode()
                    if issuer.discovery_mode.startswith("trickle"):
                        self._trickle(body, headers_too=issuer.discovery_mode == "trickle-headers")
                        return
                    self._send(body)
                elif self.path.startswith("/authorize?"):
                    status, location = issuer.authorize(parse_qs(urlsplit(self.path).query))
                    self.send_response(status)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    if issuer.mode == "hang":
                        issuer._stop.wait(60)
                        return
                    if issuer.mode == "garbage":
                        self._send(b"<html>this is not a key set</html>")
                        return
                    body = json.dumps({"keys": [issuer.jwk(k) for k in issuer.published]}).encode()
                    if issuer.mode.startswith("trickle"):
                        self._trickle(body, headers_too=issuer.mode == "trickle-headers")
                        return
                    self._send(body)
                    issuer.jwks_answered += 1
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                if self.path != "/token":
                    self.send_error(404)
                    return
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                status, body = issuer.exchange({k: v[0] for k, v in form.items()})
                self._send(json.dumps(body).encode(), status)

            def do_OPTIONS(self) -> None:  # a CORS preflight (the console is on another origin)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.send_header("Access-Control-Allow-Methods", "GET, POST")
                self.end_headers()

            def _trickle(self, body: bytes, headers_too: bool) -> None:
                """A 200 with ``body``, one byte at a time (the headers too, with ``headers_too``), until
                done, stopped, or the client hangs up."""
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                if not headers_too:
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b""
                try:
                    for i in range(len(head) + len(body)):
                        if issuer._stop.wait(issuer.trickle_seconds):
                            return
                        self.wfile.write((head + body)[i : i + 1])
                        self.wfile.flush()
                except OSError:  # the client gave up
                    return

            def _send(self, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_url = f"{self.url}/jwks"
        # shutdown() waits for the loop's next poll: a short interval keeps each test's teardown short.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def add_key(self, kty: str = "RSA", kid: str | None = None, publish: bool = True) -> str:
        kid = kid or f"{kty.lower()}-{len(self.private) + 1}"
        self.private[kid] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kty == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )
        if publish:
            self.published.append(kid)
        return kid

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.private[kid].public_key()
        algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPublicKey) else ECAlgorithm
        data: dict[str, Any] = json.loads(algorithm.to_jwk(key))
        data.update(kid=kid, use="sig")
        return data

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": "coaching",
            "sub": "u-1",
            "tid": "t1",
            "role": "agent",
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str, alg: str | None = None, **overrides: Any) -> str:
        key = self.private[kid]
        alg = alg or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(self.claims(**overrides), key, algorithm=alg, headers={"kid": kid})

    # --- the authorization code flow with PKCE -------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, list[str]]) -> tuple[int, str]:
        """The user is ``sign_in_as`` and consents at once: 302 back to the client with a one-time code."""
        q = {k: v[0] for k, v in query.items()}
        redirect = q.get("redirect_uri", "")
        refused = None
        if q.get("response_type") != "code":
            refused = "unsupported_response_type"
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            refused = "invalid_request"
        if refused:
            return 302, f"{redirect}?{urlencode({'error': refused, 'state': q.get('state', '')})}"
        code = secrets.token_urlsafe(24)
        self._codes[code] = {
            "client_id": q.get("client_id", ""),
            "redirect_uri": redirect,
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce", ""),
        }
        return 302, f"{redirect}?{urlencode({'code': code, 'state': q.get('state', '')})}"

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        self.grants.append(grant)
        nonce: str | None = None
        if grant == "authorization_code":
            pending = self._codes.pop(form.get("code", ""), None)  # a code works once
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                pending is None
                or pending["client_id"] != form.get("client_id")
                or pending["redirect_uri"] != form.get("redirect_uri")
                or pending["challenge"] != challenge
            ):
                return 400, {"error": "invalid_grant"}
            nonce = pending["nonce"]
        elif grant == "refresh_token":
            used = form.get("refresh_token", "")
            if used not in self._refresh_tokens:
                return 400, {"error": "invalid_grant"}
            self._refresh_tokens.discard(used)  # rotated: the old one never works again
        else:
            return 400, {"error": "unsupported_grant_type"}
        refresh = secrets.token_urlsafe(24)
        self._refresh_tokens.add(refresh)
        now = int(time.time())
        client_id = form.get("client_id", "")
        id_token = self.token(
            self.sign_in_kid,
            **{**self.sign_in_as, "aud": client_id, "nonce": nonce, "iat": now, "exp": now + self.id_token_seconds},
        )
        return 200, {"id_token": id_token, "refresh_token": refresh, "token_type": "Bearer", "expires_in": self.id_token_seconds}
