"""Timeouts and retries of every AWS SDK client, chosen so a handler always answers in time.

A WebSocket frame or REST request runs in a function with a 29 s timeout (API Gateway's integration
limit is also 29 s). A store that stops answering must turn into an ``unavailable`` reply well before
that, never into a Lambda timeout with the client left waiting. Every client therefore has an
explicit connect timeout, read timeout and number of attempts (botocore's ``standard`` retry mode,
whose pause before attempt n+1 is at most ``2**(n-1)`` s), and the worst case of one call is

    attempts x (connect + read) + the pauses between attempts

The first call that exhausts its attempts ends the action (the error is mapped to ``unavailable``),
so a frame pays that worst case at most once per client, plus the coaching commit loop's own budget
(``COMMIT_BUDGET_SECONDS``): see docs/faults.md for the sums, and tests/unit/test_sdk_budget.py,
which checks them against the function timeouts of ``.chalice/config.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from botocore.config import Config

MAX_STANDARD_BACKOFF_SECONDS = 20.0


class SdkBudget(msgspec.Struct, frozen=True):
    """Connect and read timeouts (seconds) and total attempts (the first call included)."""

    connect: int
    read: int
    attempts: int

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call can take before it fails: every attempt timing out, plus pauses."""
        pauses = sum(min(MAX_STANDARD_BACKOFF_SECONDS, 2.0**n) for n in range(self.attempts - 1))
        return self.attempts * (self.connect + self.read) + pauses

    def config(self, **extra: Any) -> Config:
        from botocore.config import Config

        return Config(
            connect_timeout=self.connect,
            read_timeout=self.read,
            retries={"mode": "standard", "total_max_attempts": self.attempts},
            **extra,
        )


# DynamoDB answers in milliseconds; 3 s without a byte means it is not going to answer soon.
DYNAMODB = SdkBudget(connect=1, read=3, attempts=2)
# Connections the one shared DynamoDB client keeps open: the stream consumer looks up recipients for up to
# 8 workitems at once (services/fanout.py), and the local stack runs a console's parallel frames (a
# supervisor watching 15 agents at once) side by side on it. Connections open only when needed; a
# smaller pool discards them ("Connection pool is full") and reconnects on the next call.
DYNAMODB_POOL = 50
# One post to one connection: no retry (a slow or throttled receiver is skipped, see push.py), and a
# short read timeout so that one slow receiver never holds up a change for long.
PUSH = SdkBudget(connect=1, read=2, attempts=1)
# Chime SDK meetings and media pipelines (voice actions).
CHIME = SdkBudget(connect=2, read=5, attempts=2)
# SSM Parameter Store: secrets, read once per cold start and every few minutes after.
SSM = SdkBudget(connect=1, read=2, attempts=2)

# The delivery queues (SQS): sends from the fan-out, from handlers (one message after their store
# work, inside their 29 s) and from the delivery function. SQS answers in milliseconds: the same
# short budget as DynamoDB, so a handler's store call and its send fit in its timeout together.
SQS = SdkBudget(connect=1, read=3, attempts=2)
# AWS End User Messaging SMS: one attempt, because a send whose answer was lost may have texted the
# customer already; a retry could text them twice. A failure is shown to the agent as `failed`.
SMS = SdkBudget(connect=2, read=5, attempts=1)

# Amazon Comprehend (sentiment of customer messages, from the stream consumer): a second attempt, since
# the analysis is read-only; a message left without its label raises no sentiment alert.
COMPREHEND = SdkBudget(connect=1, read=3, attempts=2)

# Amazon Connect's StartContactStreaming (from the connector function, once per chat it follows): a
# second attempt is safe, the call is idempotent by its client token.
CONNECT = SdkBudget(connect=1, read=3, attempts=2)

# Creating tables (local stack and tests only, never on a request path): a cold store is slow.
TABLE_ADMIN = SdkBudget(connect=2, read=30, attempts=3)

ALL: dict[str, SdkBudget] = {
    "dynamodb": DYNAMODB,
    "apigatewaymanagementapi": PUSH,
    "chime": CHIME,
    "ssm": SSM,
    "sqs": SQS,
    "pinpoint-sms-voice-v2": SMS,
    "comprehend": COMPREHEND,
    "connect": CONNECT,
}
