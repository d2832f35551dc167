"""``python -m devstack``: the whole product on ``127.0.0.1:$PORT`` with no AWS account (docs/product.md W1).

Order matters: the store is started and the environment the app reads is set *before* ``app`` is
imported, exactly as Lambda's environment exists before the module loads.

Environment: ``PORT`` (8000; 0 picks a free port), ``COACHING_JWT_SECRET``, ``COACHING_WEBHOOK_SECRET``
(local-only defaults, printed), ``DEVSTACK_SWEEP_SECONDS`` (5), ``DYNAMODB_ENDPOINT`` (use a running
store instead of the embedded one), ``DEVSTACK_STORE`` (auto: DynamoDB Local when Java and its jar are installed, else moto),
``DEVSTACK_SEED`` (1; 0 skips the demo tenant), ``DEVSTACK_APP``
(``app:app``), ``LOG_LEVEL`` (INFO). ``COACHING_OIDC_ISSUER``, ``COACHING_OIDC_AUDIENCE``,
``COACHING_OIDC_JWKS_URL``, ``COACHING_OIDC_TENANT_CLAIM`` and ``COACHING_OIDC_ROLE_CLAIM`` point it at
an OIDC issuer, as on AWS (docs/product.md W9); they reach the app unchanged. With them,
``COACHING_CONSOLE_CLIENT_ID`` (the console's client id at that issuer) makes the web console sign in there.

Faults (docs/faults.md): the stack watches its store. If the store process dies, it logs one line
saying so, answers ``GET /health`` with 503 and the reason for a moment, and exits with code 3 (restart
``make run``: the store is in memory, so a restart is a fresh stack). While the store is alive but
not answering (e.g. frozen), ``/health`` is 503 "the store is not answering" and actions answer
``unavailable``; both recover on their own. SIGTERM or SIGINT stops the stack within 5 s whatever
the clients or the store do.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import importlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from chalice.app import Chalice
from chalice.local import LambdaContext

from devstack.apigw.server import bind_socket
from devstack.connectors import routes as connector_routes
from devstack.console import ConsoleSite, console_config
from devstack.delivery import DELIVERY_HANDLER, DeliveryPumps, LocalDeliveryQueue, QueuePump, RecordingSms
from devstack.gateway import Gateway, start_management_site, start_site
from devstack.seed import CUSTOMER, USERS, SeedError, seed
from devstack.store import EmbeddedStore
from devstack.streams import StreamPump, StreamTail
from devstack.transcript import STREAM_ARN as TRANSCRIPT_STREAM_ARN
from devstack.transcript import route as transcript_route

log = logging.getLogger("devstack")

LOCAL_JWT_SECRET = "local-only-jwt-secret-do-not-deploy"  # noqa: S105 - printed local default
LOCAL_WEBHOOK_SECRET = "local-only-webhook-secret-do-not-deploy"  # noqa: S105 - printed local default
SWEEP_HANDLER = "escalate_assistance"
FANOUT_HANDLER = "fanout"
EXIT_STORE_DIED = 3
STORE_DIED_GRACE_SECONDS = 1.5  # /health answers 503 with the reason this long before the exit
WATCH_EVERY_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 1.0
SHUTDOWN_SECONDS = 4.5  # SIGTERM: everything is stopped by then, or the process exits anyway


class StartupError(RuntimeError):
    """The stack cannot start; the message says why."""


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise StartupError(f"{name} must be an integer, got {raw!r}") from None


def _secret(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    if value:
        print(f"{name}: (from the environment)")
        return value
    os.environ[name] = default
    print(f"{name}={default}   (local-only default)")
    return default


DEMO_CONNECT_INSTANCE = "arn:aws:connect:us-east-1:000000000000:instance/00000000-0000-4000-8000-000000000001"


def _configure_app_environment(store_endpoint: str, management_url: str) -> None:
    """What Lambda's configuration would provide, pointed at the local store and gateway (its
    ``@connections`` API is on a private loopback port, under a secret path)."""
    os.environ.update(
        {
            "DYNAMODB_ENDPOINT": store_endpoint,
            "WEBSOCKET_ENDPOINT": management_url,
            "COACHING_STAGE": "local",
            "WEBHOOK_TARGETS": "local",  # receivers on 127.0.0.1 and over http are fine here
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",  # dummy credential for the embedded store
            # Amazon Connect (docs/connectors.md): the demo instance the local stack follows.
            "CONNECT_INSTANCE_ARNS": os.environ.get("DEVSTACK_CONNECT_INSTANCE", DEMO_CONNECT_INSTANCE),
            "COACHING_ACCOUNT_ID": "000000000000",
            # The live transcript's sink stream (docs/transcript.md): POST /_local/voice/.../transcript.
            "TRANSCRIPT_STREAM_ARN": TRANSCRIPT_STREAM_ARN,
        }
    )
    # Never let a developer's real AWS identity reach the local stack.
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)


def _load_app(spec: str) -> Chalice:
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    if not isinstance(app, Chalice):
        raise StartupError(f"{spec} is not a Chalice app")
    return app


def _create_tables() -> None:
    try:
        from chalicelib.adapters.dynamo import create_tables  # needs the environment set first
    except ImportError as exc:
        raise StartupError(f"cannot create tables: {exc}") from exc
    create_tables()


def _stream_pump(app: Chalice, store_endpoint: str, moto: bool) -> StreamPump | None:
    """Feed the workitems table's stream to the app's ``fanout`` function, as the event source
    mapping does on AWS (the function is what pushes coaching events, in commit order)."""
    handler = app.handler_map.get(FANOUT_HANDLER)
    if handler is None:
        log.info("no %s function in the app: nothing reads the workitems stream", FANOUT_HANDLER)
        return None
    import boto3

    from chalicelib import settings as settings_module

    settings = settings_module.load()
    from chalicelib.adapters.sdk_budget import DYNAMODB

    dynamodb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=store_endpoint, config=DYNAMODB.config())
    streams = boto3.client("dynamodbstreams", region_name=settings.region, endpoint_url=store_endpoint, config=DYNAMODB.config())
    tail = StreamTail.for_table(dynamodb, streams, settings.workitems_table, start="TRIM_HORIZON", reposition=moto)

    def invoke(event: dict[str, Any]) -> Any:
        context = LambdaContext(function_name=FANOUT_HANDLER, memory_size=1024, max_runtime_ms=60_000)
        return handler(event, context)

    return StreamPump(tail, invoke).start()


def _delivery(app: Chalice, gateway: Gateway) -> DeliveryPumps | None:
    """The services with the local delivery and SMS queues, SMS recorder and meeting fake (``GET
    /_local/outbound`` shows what would have been texted), and the pumps that run the app's
    ``deliver_webhooks`` function on those queues as Lambda's SQS event sources do."""
    from chalicelib import bootstrap
    from chalicelib import settings as settings_module
    from chalicelib.entrypoints.wire import WIRE

    queue = LocalDeliveryQueue(max_receives=_int_env("DEVSTACK_DELIVERY_ATTEMPTS", 14))
    sms_queue = LocalDeliveryQueue(max_receives=3, dead_to=queue)
    connector_queue = LocalDeliveryQueue(max_receives=5)
    sms = RecordingSms()
    timers = LocalDeliveryQueue(max_receives=5, dead_to=queue)
    settings = settings_module.load()
    from devstack.fake_meetings import FakeMeetingProvider  # imports chalicelib: after the environment is set

    meetings = FakeMeetingProvider(media_region=settings.media_region)  # no Chime locally (docs/voice.md)
    from devstack.sentiment import LexiconSentiment

    built = bootstrap.build(
        settings,
        wire=WIRE,
        queue=queue,
        sms=sms,
        meetings=meetings,
        sms_queue=sms_queue,
        sentiment=LexiconSentiment(),
        timers=timers,
        connector_queue=connector_queue,
    )
    bootstrap.install(built)
    gateway.local_routes["/_local/outbound"] = lambda: {"sms": sms.snapshot()}
    handler = app.handler_map.get(DELIVERY_HANDLER)
    if handler is None:
        log.info("no %s function in the app: webhook deliveries stay queued", DELIVERY_HANDLER)
        return None

    def invoke(event: dict[str, Any]) -> Any:
        return handler(event, LambdaContext(function_name=DELIVERY_HANDLER, memory_size=1024, max_runtime_ms=60_000))

    # Attention timers go to the same function, from their own queue (AttentionTimerEventSource on AWS).
    pumps = [
        QueuePump(queue, invoke).start(),
        QueuePump(sms_queue, invoke, workers=2).start(),
        QueuePump(timers, invoke, workers=2).start(),
    ]
    connect = app.handler_map.get("connect_events")
    if connect is not None:  # Amazon Connect's delayed end checks, as ConnectorEventSource runs them on AWS
        context = LambdaContext(function_name="connect_events", memory_size=1024, max_runtime_ms=60_000)
        pumps.append(QueuePump(connector_queue, lambda event: connect(event, context), workers=1).start())
    return DeliveryPumps(*pumps)


def _scheduled_event(rule: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:000000000000:rule/{rule}"],
        "detail": {},
    }


async def _sweep(handler: Callable[[dict[str, Any], Any], Any], gateway: Gateway, every: float) -> None:
    """Run the escalation schedule like EventBridge would: one invocation at a time, every ``every`` s."""
    loop = asyncio.get_running_loop()
    last_failure = ""
    while True:
        await asyncio.sleep(every)
        context = LambdaContext(function_name=SWEEP_HANDLER, memory_size=1024, max_runtime_ms=60_000)
        try:
            await loop.run_in_executor(gateway.executor, handler, _scheduled_event(SWEEP_HANDLER), context)
            last_failure = ""
        except Exception as exc:
            failure = repr(exc)
            if failure == last_failure:  # the traceback was logged already; keep the log readable
                log.error("scheduled %s failed again: %s", SWEEP_HANDLER, failure)
            else:
                log.exception("scheduled %s failed; next run in %ss", SWEEP_HANDLER, every)
            last_failure = failure


def _print_banner(base_url: str, tokens: dict[str, str], customer_token: str) -> None:
    ws_url = base_url.replace("http://", "ws://", 1) + "/ws"
    names = {user_id: (name, role) for user_id, name, role in USERS}
    print("\nDemo tenant 'demo' - tokens valid 12 h:")
    for user_id, token in tokens.items():
        name, role = names[user_id]
        print(f"  {role:<10} {user_id:<8} {name:<15} {token}")
    print(f"  {'customer':<10} {CUSTOMER['sub']:<8} {CUSTOMER['name']:<15} {customer_token}  (wid {CUSTOMER['wid']})")
    agent = tokens.get("agent-1", "<token>")
    print("\nConnect as agent-1 and ping:")
    print(f'  python -m websockets "{ws_url}?token={agent}"')
    print('  > {"action": "ping", "requestId": "1"}')
    print(f'  (or: websocat "{ws_url}?token={agent}")')
    print(f"REST: curl {base_url}/health")
    print(f"Console: {base_url}/  (pick a demo user, or {base_url}/?token=<token>)\n")


class StoreDied(RuntimeError):
    """The embedded store exited; the stack cannot serve without it."""


def _probe(endpoint: str) -> Callable[[], bool]:
    """A cheap request to the store with short timeouts: True when it answers."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local store takes any key
        config=Config(
            connect_timeout=PROBE_TIMEOUT_SECONDS,
            read_timeout=PROBE_TIMEOUT_SECONDS,
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )

    def answers() -> bool:
        try:
            client.list_tables(Limit=1)
            return True
        except Exception:
            return False

    return answers


async def _watch_store(store: EmbeddedStore, gateway: Gateway, stop: asyncio.Event) -> None:
    """Mark the stack unhealthy while its store does not answer; on the store's death, say so once,
    answer /health 503 for a moment, then stop the stack with EXIT_STORE_DIED."""
    loop = asyncio.get_running_loop()
    answers = _probe(store.endpoint)
    probing: asyncio.Future[bool] | None = None
    while not stop.is_set():
        await asyncio.sleep(WATCH_EVERY_SECONDS)
        died = store.failure()
        if died is not None:
            gateway.unhealthy = died
            log.error(
                "%s; the local stack cannot serve without it and exits with code %d (restart `make run`)", died, EXIT_STORE_DIED
            )
            await asyncio.sleep(STORE_DIED_GRACE_SECONDS)
            raise StoreDied(died)
        if probing is None:
            probing = loop.run_in_executor(gateway.fast_executor, answers)
        if not probing.done():
            continue
        ok = probing.result()
        probing = None
        if not ok and gateway.unhealthy is None:
            gateway.unhealthy = "the store is not answering"
            log.warning("the store is not answering; actions answer `unavailable` until it does")
        elif ok and gateway.unhealthy is not None:
            gateway.unhealthy = None
            log.info("the store answers again")


def _exit_watchdog(seconds: float, store: EmbeddedStore) -> None:
    """Whatever hangs during shutdown (a handler stuck on a frozen store, a client that never reads),
    the process ends within ``seconds``: the store child is killed and the process exits."""
    import threading

    def expire() -> None:
        log.error("shutdown took over %.1f s; exiting now", seconds)
        pid = store.pid
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def _log_issuer() -> None:
    """Say which OIDC issuer's tokens are accepted besides the HS256 ones, if any (docs/product.md W9)."""
    if os.environ.get("COACHING_OIDC_ISSUER"):
        log.info(
            "OIDC issuer: %s (audience %r)", os.environ["COACHING_OIDC_ISSUER"], os.environ.get("COACHING_OIDC_AUDIENCE", "")
        )


def _authenticate(token: str) -> object:
    """The product's REST authentication of ``token`` (what the console's local renewal must respect)."""
    from chalicelib import bootstrap
    from chalicelib.entrypoints.wire import WIRE

    return bootstrap.services(WIRE).sessions.authenticate(token)


async def _serve(port: int) -> None:  # noqa: PLR0915 - the one place every local component starts and stops
    sock = bind_socket("127.0.0.1", port)
    actual_port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{actual_port}"
    management_sock = bind_socket("127.0.0.1", 0)
    management_key = secrets.token_urlsafe(24)
    management_url = f"http://127.0.0.1:{management_sock.getsockname()[1]}/{management_key}"
    sweep_seconds = _int_env("DEVSTACK_SWEEP_SECONDS", 5)
    jwt_secret = _secret("COACHING_JWT_SECRET", LOCAL_JWT_SECRET)
    webhook_secret = _secret("COACHING_WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET)

    store = EmbeddedStore(os.environ.get("DYNAMODB_ENDPOINT", ""), os.environ.get("DEVSTACK_STORE", "auto"))
    endpoint = store.start()
    where = f"embedded {store.kind}, in memory" if store.embedded else "from DYNAMODB_ENDPOINT"
    log.info("store: %s (%s%s)", endpoint, where, f", pid {store.pid}" if store.pid else "")
    runner = None
    management_runner = None
    pump: StreamPump | None = None
    sweep: asyncio.Task[None] | None = None
    watch: asyncio.Task[None] | None = None
    gateway: Gateway | None = None
    deliveries: DeliveryPumps | None = None
    stop = asyncio.Event()
    try:
        _configure_app_environment(endpoint, management_url)
        app = _load_app(os.environ.get("DEVSTACK_APP", "app:app"))
        _create_tables()
        pump = _stream_pump(app, endpoint, store.kind == "moto")
        console = ConsoleSite(jwt_secret, config=console_config(os.environ), authenticate=_authenticate)
        if console.config["signIn"] == "oidc":
            log.info("console sign-in: the OIDC issuer, client id %r", console.config["oidc"]["clientId"])
        gateway = Gateway(
            app, after_invoke=pump.nudge if pump else None, middlewares=[console.middleware], management_key=management_key
        )
        deliveries = _delivery(app, gateway)
        gateway.local_posts.update(connector_routes(app, os.environ.get("AWS_REGION", "us-east-1")))
        transcript = transcript_route(app)
        if transcript is not None:
            gateway.local_post_patterns.append(transcript)
        runner = await start_site(gateway, sock)
        management_runner = await start_management_site(gateway, management_sock)
        log.info(
            "gateway: %s (REST), %s/ws (WebSocket); @connections only on a private loopback port",
            base_url,
            base_url.replace("http", "ws", 1),
        )
        _log_issuer()

        loop = asyncio.get_running_loop()
        if os.environ.get("DEVSTACK_SEED", "1") != "0":
            result = await loop.run_in_executor(
                None, lambda: seed(base_url, jwt_secret=jwt_secret, webhook_secret=webhook_secret)
            )
            _print_banner(base_url, result.tokens, result.customer_token)

        handler = app.handler_map.get(SWEEP_HANDLER)
        if handler is not None and sweep_seconds > 0:
            sweep = asyncio.create_task(_sweep(handler, gateway, sweep_seconds))
        else:
            log.info("no %s schedule in the app (or DEVSTACK_SWEEP_SECONDS=0): no escalation sweep", SWEEP_HANDLER)

        if store.embedded:
            watch = asyncio.create_task(_watch_store(store, gateway, stop))
        print(f"ready {base_url}", flush=True)
        await _until_stopped(stop, watch, store)
        log.info("shutting down")
    finally:
        if deliveries is not None:
            deliveries.stop()
        await _shutdown(sweep, watch, runner, management_runner, sock, management_sock, gateway, pump, store)


async def _until_stopped(stop: asyncio.Event, watch: asyncio.Task[None] | None, store: EmbeddedStore) -> None:
    """Wait for SIGTERM/SIGINT, or for the store watcher to report the store dead (StoreDied)."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            _exit_watchdog(SHUTDOWN_SECONDS, store)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    waiters = [asyncio.create_task(stop.wait()), *([watch] if watch else [])]
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if watch is not None and watch in done:
        stop.set()
        _exit_watchdog(SHUTDOWN_SECONDS, store)
        watch.result()  # raises StoreDied


async def _shutdown(
    sweep: asyncio.Task[None] | None,
    watch: asyncio.Task[None] | None,
    runner: web.AppRunner | None,
    management_runner: web.AppRunner | None,
    sock: socket.socket,
    management_sock: socket.socket,
    gateway: Gateway | None,
    pump: StreamPump | None,
    store: EmbeddedStore,
) -> None:
    """Stop everything within a few seconds, whatever clients or the store do (each step is bounded)."""
    for task in (sweep, watch):
        if task is not None:
            task.cancel()
    if runner is not None:
        # Closes every socket with 1001 (dropping clients that do not answer); each gets its $disconnect.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), 2.5)
    else:
        sock.close()
    if management_runner is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(management_runner.cleanup(), 0.5)
    else:
        management_sock.close()
    if gateway is not None:
        gateway.shutdown_executor(wait=False)  # handlers stuck on the store end with the process
    if pump is not None:
        pump.stop(timeout=0.2)
    store.stop(timeout=0.5)


def _metrics_to_file() -> None:
    """``DEVSTACK_METRICS_FILE=<path>``: the functions' metrics (EMF lines, docs/operations.md) are
    appended there, one per line, as CloudWatch Logs would receive them; otherwise they are not written
    (they would drown the terminal)."""
    path = os.environ.get("DEVSTACK_METRICS_FILE")
    if not path:
        return
    from chalicelib import metrics

    lock = threading.Lock()

    def append(line: str) -> None:
        with lock, open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    metrics.set_sink(append)


def main() -> int:
    _metrics_to_file()
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per request is the gateway's job; the store's and the SDK's request logs are noise.
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "pynamodb", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    try:
        port = _int_env("PORT", 8000)
        asyncio.run(_serve(port))
    except StoreDied:
        return EXIT_STORE_DIED
    except (StartupError, SeedError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"devstack: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    # Handler threads may still be waiting on a store that stopped answering; they hold nothing that
    # needs saving (the store is in memory), so the process ends now instead of joining them.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
