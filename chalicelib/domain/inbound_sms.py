"""Two-way SMS: phone numbers and the inbound texts AWS End User Messaging SMS publishes (docs/product.md
W14.1-W14.4, docs/connectors.md).

A customer's reply is published to the stack's SNS topic as a JSON message, read into an
:class:`InboundText` at the edge (``entrypoints/aws_payloads.py``). AWS does not deliver texts in the
order they were sent; the SNS notification's timestamp is the best approximation of when each
arrived, and is kept with the entry as the time it was sent.

Phone numbers are compared in E.164 form (``+`` and up to 15 digits, the first not 0). An SMS
workitem's customer id is normalized to it when the workitem is assigned, so ``+1 (425) 555-0182``
given by a routing engine and ``+14255550182`` sent by AWS are one customer. The syntax is all that
is checked: whether a number exists is the carrier's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .text import VISIBLE_REGEX

# ASCII digits only (``\d`` would take any script's digits).
E164_REGEX = r"^\+[1-9][0-9]{1,14}\Z"
E164 = re.compile(E164_REGEX)
# What people write around the digits of a number: spaces, dashes, dots, parentheses, slashes.
_SEPARATORS = re.compile(r"[\s\-.()/\u00a0\u2010-\u2015]")
# The longest text taken from a provider, as from anyone (a message's limit, W7; an SMS is far
# shorter): longer is refused, never cut.
MAX_INBOUND_TEXT_CHARS = 8000
_VISIBLE = re.compile(VISIBLE_REGEX)


def e164(number: str) -> str | None:
    """``number`` in E.164 form, or None when it cannot be one without guessing a country.

    Separators are dropped, ``tel:`` is read past, and the international prefix ``00`` stands for
    ``+``; a number written without either (a national number) is not guessed at.
    """
    text = number.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    text = _SEPARATORS.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    return text if E164.match(text) else None


def is_e164(value: object) -> bool:
    return isinstance(value, str) and E164.match(value) is not None


def customer_id(channel_is_sms: bool, given: str) -> str:
    """The customer id a workitem is stored with: an SMS customer's number in E.164 form when it is
    one (the number inbound texts are matched on), anything else as given."""
    if channel_is_sms:
        normal = e164(given)
        if normal is not None:
            return normal
    return given


def visible(text: str) -> bool:
    """Whether ``text`` holds a visible character (the product refuses text that does not)."""
    return _VISIBLE.search(text) is not None


@dataclass(frozen=True)
class InboundText:
    """A customer's text to one of a tenant's numbers, as the inbound SMS function applies it."""

    origination: str  # the customer's number (E.164)
    destination: str  # the number they texted (E.164)
    body: str
    inbound_message_id: str
    received_at: datetime  # the SNS notification's timestamp
    keyword: str | None = None
