"""Every AWS SDK client has explicit timeouts and retries, and they add up to less than the function
timeouts of ``.chalice/config.json``: a handler answers (``unavailable``) before Lambda or API Gateway
gives up on it (docs/faults.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import sdk_budget
from chalicelib.adapters.push import BATCH_WAIT_SECONDS
from chalicelib.services import commits

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
API_GATEWAY_INTEGRATION_SECONDS = 29


def _timeouts() -> dict[str, int]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    default = int(config["lambda_timeout"])
    functions = {name: int(f.get("lambda_timeout", default)) for name, f in config.get("lambda_functions", {}).items()}
    return {"default": default, **functions}


def test_worst_case_of_one_call() -> None:
    assert sdk_budget.DYNAMODB.worst_case_seconds == 2 * (1 + 3) + 1  # two attempts, one pause of at most 1 s
    assert sdk_budget.PUSH.worst_case_seconds == 1 + 2  # one attempt, no pause


def test_a_frame_answers_before_its_function_and_api_gateway_give_up() -> None:
    limit = min(_timeouts()["default"], API_GATEWAY_INTEGRATION_SECONDS)
    dynamo = sdk_budget.DYNAMODB.worst_case_seconds
    # The commit loop starts no attempt after its budget; the round in flight is one read and one commit.
    assert commits.COMMIT_BUDGET_SECONDS + 2 * dynamo < limit
    # A voice action: a Chime call and a store call, either of which ends the action when it fails.
    assert sdk_budget.CHIME.worst_case_seconds + dynamo < limit
    # An ack is posted once: the handler waits for it at most BATCH_WAIT_SECONDS.
    assert sdk_budget.PUSH.worst_case_seconds >= BATCH_WAIT_SECONDS


def test_the_authorizer_and_the_fanout_answer_in_time() -> None:
    timeouts = _timeouts()
    assert sdk_budget.SSM.worst_case_seconds < timeouts["ws_authorizer"]  # a secret read on a cold start
    assert sdk_budget.DYNAMODB.worst_case_seconds + sdk_budget.PUSH.worst_case_seconds < timeouts["fanout"]
    # Then its webhook deliveries: the delivery and SMS queues, the pauses between sends of what they
    # refused, and keeping the rest in the dead-letter queue (a queue it cannot reach is not tried again).
    from chalicelib.services.integrations import ENQUEUE_PAUSES

    queues = 3 * sdk_budget.SQS.worst_case_seconds + sum(ENQUEUE_PAUSES)
    assert sdk_budget.DYNAMODB.worst_case_seconds + sdk_budget.PUSH.worst_case_seconds + queues < timeouts["fanout"]


def test_a_handler_and_the_one_message_it_queues_answer_in_time() -> None:
    """presence.set and the assistance actions queue one SQS message after their store work."""
    limit = min(_timeouts()["default"], API_GATEWAY_INTEGRATION_SECONDS)
    assert sdk_budget.DYNAMODB.worst_case_seconds + 2 * sdk_budget.SQS.worst_case_seconds < limit


def test_every_client_gets_a_budgeted_config() -> None:
    sources = {p: p.read_text() for p in (ROOT / "chalicelib").rglob("*.py")}
    for path, text in sources.items():
        for match in re.finditer(r"(?:boto3\.client|factory)\((?P<args>[^)]*)\)", text):
            assert "config=" in match.group("args"), f"{path.relative_to(ROOT)}: a client without an explicit config"
    for budget in sdk_budget.ALL.values():
        config: Any = budget.config()  # botocore-stubs' Config declares no attributes
        assert (config.connect_timeout, config.read_timeout) == (budget.connect, budget.read)
        assert config.retries == {"mode": "standard", "total_max_attempts": budget.attempts}
