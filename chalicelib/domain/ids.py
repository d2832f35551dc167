"""The one id rule, shared by tokens, the WebSocket router, REST path parameters, webhooks and the
SIP (PSTN) handler.

An id is 1 to 128 characters: an ASCII letter or digit, then ASCII letters, digits and ``. _ : @ + -``.
Ids become parts of DynamoDB keys joined with ``#`` and appear in URL paths, so ``#``, ``/`` and ``%``
(and anything else outside that alphabet: spaces, other ASCII punctuation, non-ASCII) are never part of
one, whether a client sends them raw or percent-encoded. ``+`` is allowed after the first character, so
``user+tag@example.com`` can be an id (an E.164 number such as ``+15551234567`` cannot: it starts with
``+``; use ``tel:+15551234567`` or the digits alone). A customer's id is the one exception: it may
also be an E.164 number, ``+`` first (``CUSTOMER_ID_REGEX``), as SMS customers are known by their number.
"""

from __future__ import annotations

import re

MAX_ID_CHARS = 128
# Anchored with \Z (``$`` would also match before a trailing newline).
ID_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}\Z"
ID_PATTERN = re.compile(ID_REGEX)
# An id, or an E.164 number (``+``, then 2-15 ASCII digits, the first not 0). Never holds ``#``.
CUSTOMER_ID_REGEX = r"^(?:[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}|\+[1-9][0-9]{1,14})\Z"


def is_id(value: object) -> bool:
    """True when ``value`` is a string that follows the id rule."""
    return isinstance(value, str) and ID_PATTERN.match(value) is not None
