"""The last-admin rule (docs/product.md W3.8, chalicelib/domain/identity.py): which other admin a
demotion depends on, given the tenant's first two directory admins in id order."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import other_admin_to_keep

pytestmark = pytest.mark.unit


def test_a_user_who_is_not_among_the_first_admins_depends_on_nobody() -> None:
    assert other_admin_to_keep("agent-1", []) is None  # no admin in the directory: nothing to keep
    assert other_admin_to_keep("agent-1", ["ann"]) is None
    assert other_admin_to_keep("zed", ["ann", "bob"]) is None  # a third admin (or none): two others remain


def test_one_of_two_admins_depends_on_the_other() -> None:
    assert other_admin_to_keep("ann", ["ann", "bob"]) == "bob"
    assert other_admin_to_keep("bob", ["ann", "bob"]) == "ann"


def test_the_last_admin_is_kept() -> None:
    with pytest.raises(Conflict, match="last admin"):
        other_admin_to_keep("ann", ["ann"])
