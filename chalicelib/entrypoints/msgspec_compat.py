"""Reading msgspec's validation errors, in one place (written for msgspec 0.22.0).

msgspec says what failed only in English text (``Expected `int` >= 0 - at `$.after```), and the
contract's error names the field and the problem without echoing the value. This module is the one
reader of that text: the ``- at `$...``` suffix, the kinds of refusal by their opening words, and the
quoted field name. ``tests/unit/test_compat_pins.py`` fails on any other msgspec version, and
``tests/unit/test_validation.py`` shows what each kind must read as: on an upgrade, run them, check
the texts in msgspec's ``_core.c``, then move the pin.
"""

from __future__ import annotations

import enum
import re

import msgspec

WRITTEN_FOR = "0.22.0"

# Patterns of rare paths (a refusal): compiled on first use, ``re`` caches them.
_AT = r"(?s)(.*?)(?: - at `\$(.*)`)?"
_STEP = r"\.([^.\[]+)|\[(\d+)\]"
_QUOTED = r"`(.*)`"


class Kind(enum.Enum):
    MISSING_FIELD = "Object missing required field"
    UNKNOWN_FIELD = "Object contains unknown field"
    NOT_ALLOWED = "Invalid enum value"
    NO_MATCH = "Expected `str` matching regex"
    OTHER = ""


class Refusal(msgspec.Struct, frozen=True):
    """One msgspec validation error, read: its kind, its text (without the location), where it is
    (field names and list indexes below the validated value) and the field it quotes, if any."""

    kind: Kind
    text: str
    steps: tuple[str, ...]
    quoted: str | None


def read(error: msgspec.ValidationError) -> Refusal:
    matched = re.fullmatch(_AT, str(error))
    text, where = (matched.group(1), matched.group(2) or "") if matched else (str(error), "")
    steps = tuple(name or index for name, index in re.findall(_STEP, where))
    quoted = re.search(_QUOTED, text)
    kind = next((k for k in Kind if k is not Kind.OTHER and text.startswith(k.value)), Kind.OTHER)
    return Refusal(kind, text, steps, quoted.group(1) if quoted else None)
