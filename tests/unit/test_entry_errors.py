"""The one exception-to-error mapper of the entry layer (chalicelib/entrypoints/errors.py) and the shape of
the entry layer: named handlers only, in app.py and in the action table."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from chalicelib.domain.errors import Forbidden, RateLimited, Unavailable
from chalicelib.entrypoints import ws
from chalicelib.entrypoints.errors import NOTHING_APPLIED, contract_error, status_of

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LOGGER = "chalicelib.entrypoints.errors"


class Records(logging.Handler):
    """Every record of the mapper's logger, whatever propagation ``chalicelib.logs`` set up."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def mapper_logs() -> Iterator[Records]:
    records, logger = Records(), logging.getLogger(LOGGER)
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


def test_a_domain_error_is_the_answer_as_it_is_and_is_not_logged(mapper_logs: Records) -> None:
    refusal = Forbidden("not yours")
    assert contract_error(refusal, "action x") is refusal
    assert not mapper_logs.records


def test_a_timeout_of_the_sdk_is_unavailable_and_retryable_logged_as_a_warning(mapper_logs: Records) -> None:
    refusal = contract_error(ReadTimeoutError(endpoint_url="http://dynamodb"), "action coach.send")
    assert isinstance(refusal, Unavailable) and refusal.to_dict()["retryable"] is True
    (record,) = mapper_logs.records
    assert record.levelno == logging.WARNING and "action coach.send" in record.getMessage()


def test_a_throttled_call_is_unavailable_and_a_lost_race_is_rate_limited() -> None:
    def client_error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "TransactWriteItems")

    assert isinstance(contract_error(client_error("ThrottlingException"), "x"), Unavailable)
    assert isinstance(contract_error(client_error("TransactionConflictException"), "x"), RateLimited)


def test_anything_else_is_internal_with_a_fixed_message_and_logged_once_with_its_traceback(
    mapper_logs: Records,
) -> None:
    failure = KeyError("secret-detail")
    refusal = contract_error(failure, "REST request PUT /admin/policy")
    other = contract_error(ValueError("v"), "frame")
    assert refusal.to_dict() == {"code": "internal", "message": NOTHING_APPLIED} and status_of(refusal) == 500
    assert other.to_dict() == {"code": "internal", "message": NOTHING_APPLIED}
    first = mapper_logs.records[0]
    assert first.levelno == logging.ERROR and "PUT /admin/policy" in first.getMessage()
    assert first.exc_info is not None and first.exc_info[1] is failure
    assert len(mapper_logs.records) == 2


def test_a_non_sdk_failure_of_a_client_error_shape_is_internal() -> None:
    """A ClientError whose code means a bad request (a bug, not an outage) is not retryable."""
    bad = ClientError({"Error": {"Code": "ValidationException", "Message": "m"}}, "Query")
    assert contract_error(bad, "x").to_dict()["code"] == "internal"


def test_the_action_table_maps_every_action_to_a_named_function() -> None:
    for name, action in ws.TABLE.items():
        assert action.handler.__name__ != "<lambda>", name
        assert getattr(ws, action.handler.__name__) is action.handler, name


def test_app_py_is_wiring_only_without_lambdas() -> None:
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Lambda)]


def test_wire_names_renames_the_fields_a_refusal_names() -> None:
    from chalicelib.domain.errors import Invalid
    from chalicelib.entrypoints.errors import wire_names

    with pytest.raises(Invalid) as caught, wire_names({"negative_in_a_row": "negativeInARow"}):
        problem = {"field": "negative_in_a_row", "problem": "must be 1 to 10"}
        raise Invalid("negative_in_a_row: must be 1 to 10", problems=[problem])
    assert caught.value.to_dict() == {
        "code": "invalid",
        "message": "negativeInARow: must be 1 to 10",
        "details": {"problems": [{"field": "negativeInARow", "problem": "must be 1 to 10"}]},
    }
    with pytest.raises(Invalid) as caught, wire_names({"negative_in_a_row": "negativeInARow"}):
        raise Invalid("phrases.1: matches phrases.0", problems=[{"field": "phrases.1", "problem": "matches phrases.0"}])
    assert caught.value.message == "phrases.1: matches phrases.0"
