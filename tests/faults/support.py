"""Fault-injection helpers: the real local stack (``python -m devstack``) on DynamoDB Local, whose
store process the tests freeze (SIGSTOP) and kill, with clients that misbehave.

Each test measures what the contract promises and records it; the figures are printed at the end
of the run (and written to ``.test-reports/faults.json``): replies missing, acked messages lost,
other recipients' push latency, recovery time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.conftest import JWT_SECRET, WEBHOOK_SECRET, Stack, _start, _stop
from tests.e2e.wsclient import WsClient

REPORT = Path(__file__).resolve().parents[2] / ".test-reports" / "faults.json"
METRICS: dict[str, dict[str, Any]] = {}
_ids = itertools.count(1)


@dataclass
class FaultStack(Stack):
    """A running stack plus its process and its store child's pid."""

    process: Any = None
    store_pid: int = 0
    lines_seen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # Where the stack writes its metrics (EMF lines, as its functions write them on AWS).
    metrics_file: Path | None = None

    def health(self) -> tuple[int, Any, float]:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=10) as response:
                status, body = response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read() or b"null")
        return status, body, time.monotonic() - started

    def freeze_store(self) -> None:
        os.kill(self.store_pid, signal.SIGSTOP)

    def thaw_store(self) -> None:
        os.kill(self.store_pid, signal.SIGCONT)

    def log_since(self, mark: int) -> list[str]:
        return self.output[mark:]


def start_stack() -> FaultStack:
    fd, metrics_path = tempfile.mkstemp(prefix="faults-emf-", suffix=".jsonl")
    os.close(fd)
    env = {
        **os.environ,
        "DEVSTACK_METRICS_FILE": metrics_path,
        "PORT": "0",
        "COACHING_JWT_SECRET": JWT_SECRET,
        "COACHING_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DEVSTACK_STORE": "ddblocal",  # a separate process the tests can freeze and kill
        "DEVSTACK_SWEEP_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DYNAMODB_ENDPOINT", None)
    process, output, base_url = _start(env)
    if base_url is None:
        _stop(process)
        pytest.fail("the local stack did not start:\n" + "\n".join(output[-50:]), pytrace=False)
    pid = next((int(m.group(1)) for line in output if (m := re.search(r"store: .*pid (\d+)\)", line))), 0)
    assert pid, "the stack logs its store's pid"
    running = FaultStack(base_url=base_url, output=output, process=process, store_pid=pid, metrics_file=Path(metrics_path))
    STACKS.append(running)
    return running


def stop_stack(stack: FaultStack) -> None:
    with_suppressed = stack.process.poll() is None
    if with_suppressed:
        with contextlib.suppress(OSError):
            os.kill(stack.store_pid, signal.SIGCONT)
    _stop(stack.process)


# --- a live chat under traffic ---------------------------------------------------------------------


@dataclass
class Chat:
    """One chat workitem with its agent, customer and two monitoring supervisors connected."""

    stack: FaultStack
    workitem_id: str
    agent: WsClient
    customer: WsClient
    sup1: WsClient
    sup2: WsClient

    def close(self) -> None:
        for client in (self.agent, self.customer, self.sup1, self.sup2):
            with contextlib.suppress(Exception):
                client.close()


def open_chat(stack: FaultStack) -> Chat:
    admin = stack.token("admin-1", "admin")
    assert stack.rest("PUT", "/admin/users/sup-2", admin, {"name": "Sky Supervisor", "role": "supervisor"})[0] == 200
    team = {"name": "Front line", "supervisors": ["sup-1", "sup-2"], "agents": ["agent-1", "agent-2"]}
    assert stack.rest("PUT", "/admin/teams/team-1", admin, team)[0] == 200
    wid = f"wi-fault-{next(_ids)}-{int(time.time())}"
    status, _ = stack.post_webhook(
        {
            "eventId": f"evt-{wid}",
            "tenantId": "demo",
            "type": "workitem.assigned",
            "data": {
                "workitemId": wid,
                "channel": "chat",
                "agentId": "agent-1",
                "customer": {"id": f"c-{wid}", "name": "Casey"},
                "subject": "Faults",
            },
        }
    )
    assert status == 200
    agent = stack.connect(stack.token("agent-1", "agent"))
    customer = stack.connect(stack.token(f"c-{wid}", "customer", wid=wid))
    sup1 = stack.connect(stack.token("sup-1", "supervisor"))
    sup2 = stack.connect(stack.token("sup-2", "supervisor"))
    sup1.ok("monitor.start", workitemId=wid, timeout=10)
    sup2.ok("monitor.start", workitemId=wid, timeout=10)
    return Chat(stack, wid, agent, customer, sup1, sup2)


@dataclass
class Sent:
    request_id: str
    text: str
    at: float


class Traffic:
    """The customer writes ``rate`` messages a second (without waiting for acks), as in a live chat."""

    def __init__(self, chat: Chat, rate: float = 5, size: int = 40) -> None:
        self.chat = chat
        self.rate = rate
        self.size = size
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(1 / self.rate):
            n += 1
            text = f"m{n}-" + "x" * max(0, self.size - 8)
            try:
                rid = self.chat.customer.send("message.send", workitemId=self.chat.workitem_id, text=text)
            except Exception:
                return
            self.sent.append(Sent(rid, text, time.monotonic()))


def replies(client: WsClient) -> dict[str, list[dict[str, Any]]]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for frame in client.frames:
        if frame.get("type") in ("ack", "error"):
            by_id.setdefault(str(frame.get("requestId")), []).append(frame)
    return by_id


def wait_replies(client: WsClient, sent: list[Sent], timeout: float) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    while True:
        got = replies(client)
        if all(s.request_id in got for s in sent) or time.monotonic() > deadline or client.closed:
            return got
        time.sleep(0.1)


def check_delivery(chat: Chat, sent: list[Sent], timeout: float = 30) -> dict[str, Any]:
    """Every frame got exactly one reply, every acked message is on the timeline, seq has no gap."""
    got = wait_replies(chat.customer, sent, timeout)
    missing = [s.request_id for s in sent if s.request_id not in got]
    doubled = [rid for rid, frames in got.items() if len(frames) > 1]
    acked = {s.text for s in sent if got.get(s.request_id) and got[s.request_id][0]["type"] == "ack"}
    codes: dict[str, int] = {}
    for s in sent:
        for frame in got.get(s.request_id, []):
            if frame["type"] == "error":
                codes[frame["error"]["code"]] = codes.get(frame["error"]["code"], 0) + 1
    entries = timeline(chat)
    seqs = [e["seq"] for e in entries]
    on_timeline = {e.get("text") for e in entries if e["kind"] == "customer_message"}
    return {
        "frames": len(sent),
        "missing": missing,
        "doubled": doubled,
        "acked": len(acked),
        "acked_lost": sorted(acked - on_timeline),
        "errors": codes,
        "seq_contiguous": seqs == list(range(1, len(seqs) + 1)),
    }


def timeline(chat: Chat) -> list[dict[str, Any]]:
    reader = chat.stack.connect(chat.stack.token("agent-1", "agent"))
    try:
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            page = reader.ok("timeline.get", workitemId=chat.workitem_id, after=after, limit=200, timeout=20)
            entries.extend(page["entries"])
            if not page["hasMore"] or not page["entries"]:
                return entries
            after = page["entries"][-1]["seq"]
    finally:
        reader.close()


def push_latencies(receiver: WsClient, sent: list[Sent], received_at: dict[str, float]) -> list[float]:
    """Seconds from a message's send to its ``message.received`` on ``receiver`` (by text)."""
    by_text = {s.text: s.at for s in sent}
    return [received_at[t] - by_text[t] for t in received_at if t in by_text]


class ArrivalClock:
    """Notes when each customer message reaches a receiver (polls its frames every 20 ms)."""

    def __init__(self, receiver: WsClient, event: str = "message.received") -> None:
        self.receiver = receiver
        self.event = event
        self.at: dict[str, float] = {}
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            frames = self.receiver.frames
            now = time.monotonic()
            for frame in frames[self._seen :]:
                if frame.get("type") == "event" and frame.get("event") == self.event:
                    text = frame["data"]["entry"].get("text")
                    if text is not None:
                        self.at.setdefault(text, now)
            self._seen = len(frames)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(2)
        return self.at


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


# --- raw sockets: a client that never reads, a client that vanishes -------------------------------


def raw_websocket(stack: FaultStack, token: str, rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket handshake on a socket with a tiny receive buffer; the caller then never reads."""
    parts = urlsplit(stack.base_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    key = b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws?token={quote(token, safe='')} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "the stack closed the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def record(name: str, **figures: Any) -> None:
    METRICS[name] = figures


# --- what the dashboard shows: the stacks' metrics during one test ------------------------------------

STACKS: list[FaultStack] = []
EMF_REPORT = REPORT.with_name("faults-emf.jsonl")


def metrics_marks() -> dict[Path, int]:
    """How many metric lines each stack had written so far."""
    return {s.metrics_file: _lines(s.metrics_file) for s in STACKS if s.metrics_file is not None}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def metrics_since(marks: dict[Path, int]) -> list[str]:
    """The EMF lines every stack wrote since ``marks`` (a stack started since then: all of its lines)."""
    lines: list[str] = []
    for stack in STACKS:
        if stack.metrics_file is not None and stack.metrics_file.exists():
            lines += stack.metrics_file.read_text().splitlines()[marks.get(stack.metrics_file, 0) :]
    return lines


def dashboard(lines: list[str]) -> dict[str, Any]:
    """The figures a dashboard of the fault's minutes would show: counts summed, delays' p50/p99, and the
    actions that answered errors."""
    from tests.support.emf import parse

    points = parse(lines)
    totals: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    errors_by_action: dict[str, float] = {}
    for p in points:
        dims = dict(p.dimensions)
        if p.unit == "Milliseconds" and set(dims) == {"Stack"}:
            samples.setdefault(p.name, []).append(p.value)
        elif p.unit == "Count":
            key = p.name + "".join(f"[{v}]" for k, v in p.dimensions if k != "Stack")
            if "Action" not in dims:
                totals[key] = totals.get(key, 0) + p.value
            elif p.name == "ActionErrors":
                errors_by_action[dims["Action"]] = errors_by_action.get(dims["Action"], 0) + p.value
    shown: dict[str, Any] = {k: int(v) for k, v in sorted(totals.items())}
    for name, values in sorted(samples.items()):
        ordered = sorted(values)
        shown[f"{name} p50"] = ordered[len(ordered) // 2]
        shown[f"{name} p99"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        shown[f"{name} max"] = ordered[-1]
    if errors_by_action:
        shown["ActionErrors by action"] = {k: int(v) for k, v in sorted(errors_by_action.items())}
    return shown
