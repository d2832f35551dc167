"""A test OIDC issuer: keys generated in the test, its discovery document and JWKS served on 127.0.0.1.

``mode`` makes the JWKS endpoint misbehave: ``"hang"`` (never answers until stopped) or ``"garbage"``
(answers 200 with something that is not a key set).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class Issuer:
    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.published: list[str] = []
        self.mode = "ok"
        self.jwks_requests = 0
        self.discovery_requests = 0
        self._stop = threading.Event()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    issuer.discovery_requests += 1
                    self._send(json.dumps({"issuer": issuer.url, "jwks_uri": issuer.jwks_url}).encode())
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    if issuer.mode == "hang":
                        issuer._stop.wait(60)
                        return
                    if issuer.mode == "garbage":
                        self._send(b"<html>this is not a key set</html>")
                        return
                    self._send(json.dumps({"keys": [issuer.jwk(k) for k in issuer.published]}).encode())
                else:
                    self.send_error(404)

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_url = f"{self.url}/jwks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
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
