"""The web console on the local stack: the built static files at ``/`` and two local-only sign-in helpers.

Served on the gateway's own port (an aiohttp middleware in front of the REST/WebSocket routes):

- ``GET /``, ``/index.html``, ``/assets/…``: ``console/dist`` (``make console`` builds it);
- ``GET /config.json``: the console's configuration for this stack (same origin, fake voice; local sign-in,
  or sign-in at the OIDC issuer when ``COACHING_CONSOLE_CLIENT_ID`` is set with ``COACHING_OIDC_ISSUER``);
- ``GET /console/demo-users``: the demo tenant's users, each with a freshly minted token (the picker);
- ``POST /console/token`` ``{"token"}``: a new token with the same claims and lifetime for a valid one
  signed by this stack that the product still accepts (not revoked, an admin still an admin: the REST
  authentication decides), as an identity provider's refresh would; the console then sends ``auth.refresh``.

Every answer carries the console's security headers (docs/console.md): a Content-Security-Policy (scripts
from this origin and the one inline script of ``index.html`` by its hash, no inline or eval'd code;
connections to this origin, its WebSocket and the OIDC issuer; never framed), ``X-Frame-Options: DENY``,
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``. On AWS the CloudFront
distribution sends the same policy (``ConsoleResponseHeadersPolicy`` in infra/merge-template.yaml).

None of this exists on AWS: there the console is static files behind CloudFront and tokens come from the
identity provider. Nothing here is imported by ``app`` or enters the Lambda package.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from chalicelib.domain.errors import DomainError
from chalicelib.entrypoints.errors import status_of
from devstack.apigw.rest import is_utf8
from devstack.seed import CUSTOMER, TENANT, USERS
from devstack.tokens import TWELVE_HOURS, mint

log = logging.getLogger("devstack.console")

DIST = Path(__file__).resolve().parent.parent / "console" / "dist"
LOCAL_CONFIG = {"apiUrl": "", "wsUrl": "", "signIn": "local", "voice": "fake"}
_PAGES = {"/", "/index.html"}
_MAX_TOKEN_BYTES = 8192

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: bytes) -> list[str]:
    """The CSP hash source (``'sha256-…'``) of each inline script of ``html``."""
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in _INLINE_SCRIPT.findall(html)]


def _origin(url: str) -> str | None:
    match = re.match(r"^((?:https?|wss?)://[^/?#]+)", url)
    return match.group(1) if match else None


def content_security_policy(config: Mapping[str, Any], websocket_origin: str, script_hashes: list[str]) -> str:
    """The console's policy: everything from this origin only, scripts without inline or eval'd code (but
    ``index.html``'s own inline script, by its hash), connections to this origin, its WebSocket, the APIs
    ``config.json`` names on other origins and the OIDC issuer's endpoints, never framed, no ``<base>``,
    no plugins."""
    oidc = config.get("oidc") or {}
    named = [str(config.get("apiUrl") or ""), str(config.get("wsUrl") or "")]
    named += [str(oidc.get(key) or "") for key in ("issuer", "tokenEndpoint")]
    connect = ["'self'", websocket_origin, *dict.fromkeys(o for o in map(_origin, named) if o and o != websocket_origin)]
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": connect,
        "media-src": ["'self'", "blob:"],
        "worker-src": ["'self'", "blob:"],
        "manifest-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def console_config(env: Mapping[str, str]) -> dict[str, Any]:
    """``config.json``: local sign-in, or the OIDC issuer's sign-in page for the console's client id
    (``COACHING_CONSOLE_CLIENT_ID``) with the claim names the app reads, as ``make publish-console`` writes
    it on AWS."""
    issuer, client_id = env.get("COACHING_OIDC_ISSUER", ""), env.get("COACHING_CONSOLE_CLIENT_ID", "")
    if not (issuer and client_id):
        return dict(LOCAL_CONFIG)
    oidc = {
        "issuer": issuer,
        "clientId": client_id,
        "roleClaim": env.get("COACHING_OIDC_ROLE_CLAIM") or "role",
        "tenantClaim": env.get("COACHING_OIDC_TENANT_CLAIM") or "tid",
    }
    return {**LOCAL_CONFIG, "signIn": "oidc", "oidc": oidc}


class ConsoleSite:
    """Serves ``dist`` and the local sign-in helpers; every other request goes on to the gateway."""

    def __init__(
        self,
        jwt_secret: str,
        dist: Path = DIST,
        config: dict[str, Any] | None = None,
        authenticate: Callable[[str], object] | None = None,
    ) -> None:
        self._secret = jwt_secret
        self._dist = dist.resolve()
        self.config = config or dict(LOCAL_CONFIG)
        # The product's own check of a token (the REST authentication: revocation, live role); it raises
        # the product's error (a DomainError) for a token it refuses. Blocking: run off the event loop.
        self._authenticate = authenticate

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await self._console(request)
        if response is None:
            return await handler(request)
        self._secure(request, response)
        return response

    def _secure(self, request: web.Request, response: web.StreamResponse) -> None:
        """The console's security headers, on every file and helper it serves."""
        index = self._dist / "index.html"
        hashes = inline_script_hashes(index.read_bytes()) if index.is_file() else []
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = content_security_policy(self.config, f"ws://{request.host}", hashes)

    async def _console(self, request: web.Request) -> web.StreamResponse | None:
        """The console's answer to ``request``, or None for a request that is not the console's. Bytes
        are input here too: a body that is not UTF-8 is refused first, as the API refuses it."""
        answer = self._route(request)
        if answer is None:
            return None
        if request.can_read_body and not is_utf8(await request.read()):
            return _error(400, "invalid", "the body is not valid UTF-8 text")
        return await answer()

    def _route(self, request: web.Request) -> Callable[[], Awaitable[web.StreamResponse]] | None:
        path = request.path

        async def reply(response: web.StreamResponse) -> web.StreamResponse:
            return response

        if request.method in ("GET", "HEAD"):
            if path in _PAGES:
                return lambda: reply(self._file("index.html"))
            if path == "/config.json":
                return lambda: reply(web.json_response(self.config, headers={"Cache-Control": "no-store"}))
            if path.startswith("/assets/"):
                return lambda: reply(self._file(path.removeprefix("/")))
            if path == "/console/demo-users":
                return lambda: reply(web.json_response({"users": self.demo_users()}, headers={"Cache-Control": "no-store"}))
        if path == "/console/token" and request.method == "POST":
            return lambda: self._renew(request)
        return None

    def demo_users(self) -> list[dict[str, Any]]:
        users = [
            {"userId": user_id, "name": name, "role": role, "token": mint(self._secret, sub=user_id, role=role, name=name)}
            for user_id, name, role in USERS
        ]
        customer = mint(self._secret, sub=CUSTOMER["sub"], role="customer", name=CUSTOMER["name"], wid=CUSTOMER["wid"])
        users.append({"userId": CUSTOMER["sub"], "name": CUSTOMER["name"], "role": "customer", "token": customer})
        return users

    async def _renew(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if len(raw) > _MAX_TOKEN_BYTES:
            return _error(413, "too_large", "the body is too large")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _error(400, "invalid", "the body must be JSON")
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return _error(400, "invalid", "token is required")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["sub", "tid", "role", "exp"]})
        except jwt.PyJWTError as exc:
            return _error(401, "unauthorized", f"the token is not valid: {exc}")
        refused = await asyncio.get_running_loop().run_in_executor(None, self._refusal, token)
        if refused is not None:
            return refused
        lifetime = int(claims["exp"]) - int(claims.get("iat") or claims["exp"] - TWELVE_HOURS)
        fresh = mint(
            self._secret,
            sub=str(claims["sub"]),
            role=str(claims["role"]),
            tid=str(claims.get("tid") or TENANT),
            name=claims.get("name"),
            wid=claims.get("wid"),
            ttl_seconds=max(10, min(lifetime, TWELVE_HOURS)),
        )
        return web.json_response({"token": fresh}, headers={"Cache-Control": "no-store"})

    def _refusal(self, token: str) -> web.Response | None:
        """None when the product accepts ``token`` as it is now; its refusal otherwise (a revoked token is
        never renewed into a working one)."""
        if self._authenticate is None:
            return None
        try:
            self._authenticate(token)
        except DomainError as refused:
            return _error(status_of(refused), refused.code, refused.message)
        return None

    def _file(self, relative: str) -> web.StreamResponse:
        target = (self._dist / relative).resolve()
        if not target.is_relative_to(self._dist) or not target.is_file():
            if relative == "index.html":
                return web.Response(
                    status=503,
                    text="The console is not built: run `make console` (or `make install`), then reload.\n",
                    content_type="text/plain",
                )
            return _error(404, "not_found", "no such file")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        cache = "no-cache" if relative == "index.html" else "public, max-age=300"
        return web.Response(body=target.read_bytes(), content_type=content_type, headers={"Cache-Control": cache})
