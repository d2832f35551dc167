"""Every use of PynamoDB's private attributes, in one place (written for PynamoDB 6.1.0).

PynamoDB builds one ``Connection`` (and with it a botocore session and client) per model class and
gives no public way to reach or share them. The adapters need three things it keeps private:

* the low-level connection of a model (conditional updates, batch gets and transactions PynamoDB's
  model API cannot express): ``Model._get_connection().connection``;
* forgetting a model's connection after its table, region or endpoint changed: ``Model._connection``;
* one botocore client for every model, so a cold start builds one client instead of one per model:
  ``Connection._client``.

``tests/unit/test_compat_pins.py`` fails on any other PynamoDB version: check these three against the
new version's ``pynamodb/models.py`` and ``pynamodb/connection/base.py``, then move the pin.
"""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection

WRITTEN_FOR = "6.1.0"


def low_level(model: Any) -> Connection:
    """The model's low-level connection (its table's requests, with the model's settings)."""
    connection: Connection = model._get_connection().connection
    return connection


def forget_connection(model: Any) -> None:
    """Make the model build its connection again from its ``Meta`` on next use."""
    model._connection = None


def share_client(models: list[Any]) -> None:
    """Give every model the first one's botocore client (each would build its own, 0.1-0.3 s each)."""
    client = low_level(models[0]).client
    for model in models[1:]:
        low_level(model)._client = client
