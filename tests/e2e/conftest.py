"""End-to-end fixtures: the real local stack (``python -m devstack``) in a subprocess, once per session."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack.tokens import mint, webhook_signature
from tests.e2e.wsclient import WsClient

REPO_ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123"  # test-only value
WEBHOOK_SECRET = "e2e-webhook-secret-0123456789abcdef"  # test-only value
START_TIMEOUT = 60


@dataclass
class Stack:
    """A running local stack and helpers to talk to it."""

    base_url: str
    jwt_secret: str = JWT_SECRET
    webhook_secret: str = WEBHOOK_SECRET
    output: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/ws"

    def token(
        self,
        sub: str,
        role: str,
        tid: str = "demo",
        name: str | None = None,
        wid: str | None = None,
        exp_in: int = 3600,
    ) -> str:
        """A token signed with the stack's secret; ``exp_in`` < 0 gives an expired one."""
        return mint(self.jwt_secret, sub=sub, role=role, tid=tid, name=name, wid=wid, ttl_seconds=exp_in)

    def connect(self, token: str | None) -> WsClient:
        return WsClient.connect(self.ws_url, token)

    def rest(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        """One REST call; returns (status, parsed JSON body or None when empty)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        return self._http(method, path, data, headers)

    def post_webhook(self, body: dict[str, Any], secret: str | None = None, t: int | None = None) -> tuple[int, Any]:
        """POST /webhooks/events signed with ``secret`` (default: the stack's) at time ``t`` (default: now)."""
        raw = json.dumps(body).encode()
        signature = webhook_signature(secret or self.webhook_secret, raw, t)
        headers = {"Content-Type": "application/json", "X-Coaching-Signature": signature}
        return self._http("POST", "/webhooks/events", raw, headers)

    def wait_logged(self, text: str, since: int, timeout: float = 10) -> int:
        """Wait until the stack writes a line holding ``text`` after line ``since``; return the line's
        index. The positive marker before asserting what the output does not hold."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((i for i in range(since, len(self.output)) if text in self.output[i]), None)
            if found is not None:
                return found
            last = self.output[since:][-5:]
            assert time.monotonic() < deadline, f"the stack wrote no line with {text!r} within {timeout}s: {last}"
            time.sleep(0.02)

    def _http(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        if not payload:
            return status, None
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload.decode("utf-8", "replace")


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str], str | None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    output: list[str] = []
    ready: list[str] = []
    ready_event = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith("ready "):
                ready.append(line.split(" ", 1)[1].strip())
                ready_event.set()
        ready_event.set()  # the process ended

    threading.Thread(target=pump, name="devstack-output", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not ready_event.wait(0.1) and time.monotonic() < deadline:
        pass
    return process, output, (ready[0] if ready else None)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def running_stack(request: pytest.FixtureRequest, **env_vars: str) -> Iterator[Stack]:
    """A local stack of its own (a free port, the test secrets, no outside store), with ``env_vars`` on
    top; ``""`` removes a variable. Its output is printed when a test of the session failed."""
    env = {
        **os.environ,
        "PORT": "0",  # the stack binds a free port and announces it in its ready line
        "COACHING_JWT_SECRET": JWT_SECRET,
        "COACHING_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PYTHONUNBUFFERED": "1",
        "DYNAMODB_ENDPOINT": "",
        **env_vars,
    }
    process, output, base_url = _start({k: v for k, v in env.items() if v != ""})
    if base_url is None:
        _stop(process)
        pytest.fail(
            f"the local stack did not print 'ready' within {START_TIMEOUT}s "
            f"(exit code {process.returncode}):\n" + "\n".join(output),
            pytrace=False,
        )
    try:
        yield Stack(base_url=base_url, output=output)
    finally:
        _stop(process)
        if request.session.testsfailed:
            print("\n===== local stack output =====\n" + "\n".join(output), file=sys.stderr)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    # Sweeps every second and webhook retries after 1 s, 2 s ... instead of 30 s.
    # INFO: some tests wait for a line the stack logs (Stack.wait_logged).
    with running_stack(request, DEVSTACK_SWEEP_SECONDS="1", WEBHOOK_RETRY_BASE_SECONDS="1", LOG_LEVEL="INFO") as running:
        yield running
