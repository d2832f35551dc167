"""The one use of Chalice's internals by the local gateway (written for Chalice 1.34.0).

Chalice keeps the request being handled in ``app.current_request``, one attribute for the whole
app; ``chalice local`` serves one request at a time. The gateway runs handlers on a thread pool, so
it gives the app ``chalice.local.LocalChalice``'s thread-local ``current_request`` by adding that
class to the app's own (a class swap: Chalice has no hook for it).

``tests/unit/test_compat_pins.py`` fails on any other Chalice version: check ``LocalChalice`` in the
new version's ``chalice/local.py``, then move the pin.
"""

from __future__ import annotations

from chalice.app import Chalice
from chalice.local import LocalChalice

WRITTEN_FOR = "1.34.0"


def make_current_request_thread_local(app: Chalice) -> None:
    """Handlers run in a thread pool; make ``app.current_request`` per thread, as ``chalice local`` does."""
    if isinstance(app, LocalChalice):
        return
    app.__class__ = type(f"Local{type(app).__name__}", (LocalChalice, type(app)), {})
