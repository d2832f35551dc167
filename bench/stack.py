"""The real local stack (``python -m devstack``) in a child process, and a tenant seeded through it.

The stack runs in its own interpreter, as ``make run`` runs it: its store over HTTP (moto's server,
or DynamoDB Local, which ``make run`` picks when Java is installed), the aiohttp gateway, the Chalice handlers on the
gateway's thread pool, and pushes through the ``@connections`` API back into the gateway. The
benchmark's clients live in the parent process, so the two share the machine's cores but not a GIL.

The tenant is created like a real one: users and teams through the admin REST routes, workitems
through signed ``workitem.assigned`` webhooks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.common import ROOT, bench_env
from devstack.tokens import mint, webhook_signature

JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123"  # local benchmark value, never deployed
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"  # local benchmark value, never deployed
TENANT = "bench"
START_TIMEOUT = 90

# How the stack runs during a benchmark (documented in docs/performance.md):
#  LOG_LEVEL=WARNING  the gateway's and app's per-request INFO lines are not written (same for echo and fan-out)
#  DEVSTACK_SEED=0    the demo tenant is not created; the benchmark seeds its own
#  DEVSTACK_SWEEP_SECONDS=0  no escalation sweep competing for the thread pool
STACK_ENV = {"LOG_LEVEL": "WARNING", "DEVSTACK_SEED": "0", "DEVSTACK_SWEEP_SECONDS": "0", "PORT": "0", "PYTHONUNBUFFERED": "1"}


class StackError(RuntimeError):
    pass


@dataclass
class Stack:
    base_url: str
    process: subprocess.Popen[str]
    output: deque[str] = field(default_factory=lambda: deque(maxlen=400))

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/ws"

    # -- credentials ---------------------------------------------------------------------------

    def token(self, sub: str, role: str, *, wid: str | None = None, name: str | None = None) -> str:
        return mint(JWT_SECRET, sub=sub, role=role, tid=TENANT, name=name or sub, wid=wid, ttl_seconds=6 * 3600)

    # -- REST ----------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise StackError(f"{method} {path} -> HTTP {error.code}: {detail}") from None
        return json.loads(payload) if payload else None

    def webhook(self, event_type: str, data: dict[str, Any], event_id: str) -> Any:
        raw = json.dumps({"eventId": event_id, "tenantId": TENANT, "type": event_type, "data": data}).encode()
        return self.request(
            "POST", "/webhooks/events", raw, headers={"X-Coaching-Signature": webhook_signature(WEBHOOK_SECRET, raw)}
        )

    # -- seeding -------------------------------------------------------------------------------

    def seed(
        self, teams: Iterable[tuple[str, list[str], list[str]]], workitems: Iterable[tuple[str, str]], workers: int = 8
    ) -> None:
        """``teams``: (team id, supervisors, agents); ``workitems``: (workitem id, agent id), chat channel."""
        teams = list(teams)
        admin = self.token("bench-admin", "admin")
        users: dict[str, str] = {}
        for _, sups, agents in teams:
            users.update(dict.fromkeys(sups, "supervisor"))
            users.update(dict.fromkeys(agents, "agent"))
        with ThreadPoolExecutor(workers) as pool:
            list(
                pool.map(
                    lambda u: self.request("PUT", f"/admin/users/{u[0]}", {"name": u[0], "role": u[1]}, token=admin),
                    users.items(),
                )
            )
            list(
                pool.map(
                    lambda t: self.request(
                        "PUT", f"/admin/teams/{t[0]}", {"name": t[0], "supervisors": t[1], "agents": t[2]}, token=admin
                    ),
                    teams,
                )
            )
            list(
                pool.map(
                    lambda w: self.webhook(
                        "workitem.assigned",
                        {
                            "workitemId": w[0],
                            "channel": "chat",
                            "agentId": w[1],
                            "customer": {"id": f"cust-{w[0]}", "name": "Casey Customer"},
                            "subject": "Benchmark",
                        },
                        f"bench-assign-{w[0]}",
                    ),
                    workitems,
                )
            )

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def dynamodb_local() -> Iterator[str | None]:
    """AWS's DynamoDB Local engine (``scripts/ddblocal.sh``, installed by ``make install``), in memory,
    on a free port, for as long as the block runs; yields its endpoint, or None when it cannot start
    (no Java or no jar: the reason is printed)."""
    script = ROOT / "scripts" / "ddblocal.sh"
    started = subprocess.run([str(script), "start", "auto"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    endpoint = started.stdout.strip().splitlines()[-1] if started.returncode == 0 and started.stdout.strip() else ""
    if not endpoint.startswith("http://"):
        print(f"DynamoDB Local unavailable: {started.stderr.strip()[-500:]}", file=sys.stderr)
        yield None
        return
    try:
        yield endpoint
    finally:
        port = endpoint.rsplit(":", 1)[1]
        subprocess.run([str(script), "stop", port], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def start(command: list[str] | None = None, extra_env: dict[str, str] | None = None) -> Stack:
    """Start ``python -m devstack`` on a free port and wait for its ``ready`` line."""
    env = {
        **bench_env(),
        **STACK_ENV,
        "COACHING_JWT_SECRET": JWT_SECRET,
        "COACHING_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **(extra_env or {}),
    }
    command = command or [sys.executable, "-m", "devstack"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    output: deque[str] = deque(maxlen=400)
    ready: list[str] = []
    event = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keep draining: a full pipe would block the stack
            output.append(line.rstrip("\n"))
            if line.startswith("ready ") and not ready:
                ready.append(line.split(" ", 1)[1].strip())
                event.set()
        event.set()

    threading.Thread(target=pump, name="devstack-output", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not event.wait(0.2) and time.monotonic() < deadline:
        pass
    if not ready:
        if process.poll() is None:
            process.kill()
        raise StackError("the local stack did not become ready:\n" + "\n".join(output))
    return Stack(base_url=ready[0], process=process, output=output)
