"""Amazon Connect storage on DynamoDB Local (docs/connectors.md): the instance's claim with its agents
(a conditional transaction), and the followed contact, which only a later contact replaces."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.services.ports import ClaimedElsewhere
from tests.ddblocal.conftest import TenantWorld

pytestmark = pytest.mark.ddblocal


def test_instance_claims_and_followed_contacts_on_the_real_engine(ddb_world: TenantWorld) -> None:
    store = ddb_world.services.integrations.store
    tenant, other = ddb_world.tid, ddb_world.tid + "-b"
    first = f"arn:aws:connect:us-east-1:123456789012:instance/{uuid.uuid4()}"
    second = f"arn:aws:connect:us-east-1:123456789012:instance/{uuid.uuid4()}"
    store.set_connect(tenant, first, {"u-1": "agent-1"}, None, "2026-12-07T22:50:00.000Z")
    assert store.connect_claim(first) == (tenant, {"u-1": "agent-1"})
    assert store.connect_instance(tenant) == first
    with pytest.raises(ClaimedElsewhere):
        store.set_connect(other, first, {}, None, "2026-12-07T22:50:00.000Z")
    assert store.connect_claim(first) == (tenant, {"u-1": "agent-1"})  # nothing written
    store.set_connect(tenant, second, {"u-2": "agent-2"}, first, "2026-12-07T22:51:00.000Z")
    assert store.connect_claim(first) is None and store.connect_claim(second) == (tenant, {"u-2": "agent-2"})

    initial = str(uuid.uuid4())
    assert store.set_contact(initial, tenant, "c-1", "2026-12-07T22:50:00.000Z")
    assert store.set_contact(initial, tenant, "c-2", "2026-12-07T22:51:00.000Z")  # the transfer's contact
    assert not store.set_contact(initial, tenant, "c-1", "2026-12-07T22:50:00.000Z")  # a late, older event
    assert store.contact(initial) == (tenant, "c-2", "2026-12-07T22:51:00.000Z")
    assert store.contact(str(uuid.uuid4())) is None
