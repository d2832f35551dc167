"""Decoded JSON (WebSocket frames, REST bodies, webhook events) into ``msgspec.Struct`` types.

msgspec checks types and ``msgspec.Meta`` constraints. This module adds what the contract has
always accepted (it was written against pydantic v2's lax mode) and msgspec does not do itself:

* an ``int`` field also takes a boolean, an integral float (``5.0``) or an integer string
  (``"5"``, ``" 5 "``, ``"+5"``, ``"05"``, ``"1_000"``, ``"5.00"``); a ``bool`` field also takes
  0 or 1, 0.0 or 1.0, and the strings 0/1, f/t, n/y, no/yes, off/on, false/true in any case;
* a renamed field (``msgspec.field(name=...)``) may also be given by its Python name;
* a string field refuses text that is not valid Unicode (a lone surrogate from a ``\\ud800`` escape).

A refusal is :class:`Invalid` naming the offending fields (``details.problems``, a list of
``{"field", "problem"}``); the message never echoes a rejected value.
"""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

import msgspec

from chalicelib.domain.errors import Invalid

S = TypeVar("S", bound=msgspec.Struct)

MAX_INT_DIGITS = 4300  # CPython's int/str conversion limit, which the contract's ints have always had
_I64 = 2**63
# Unicode White_Space: what is trimmed around an integer string.
_SPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
          "\u2028\u2029\u202f\u205f\u3000")
_FALSE = frozenset({"0", "f", "n", "no", "off", "false"})
_TRUE = frozenset({"1", "t", "y", "yes", "on", "true"})
# Patterns of rare paths (a string in an int field, a refusal): compiled on first use, ``re`` caches them.
_JSON_INT = r"-?(?:0|[1-9][0-9]*)\Z"
_AT = r"(?s)(.*?)(?: - at `\$(.*)`)?"
_STEP = r"\.([^.\[]+)|\[(\d+)\]"
_QUOTED = r"`(.*)`"


# --- lax scalars -------------------------------------------------------------------------------------


def _decimal_int(text: str) -> int | None:
    if not re.match(_JSON_INT, text) or len(text) - text.startswith("-") > MAX_INT_DIGITS:
        return None
    return int(text)


def _strip_leading_zeros(text: str) -> str | None:
    """Leading zeros (and underscores among them) off; one zero kept for zero and before a '.'."""
    if not text or text[0] not in "0123456789-":
        return None
    if text[0] != "0":
        return text
    for i, char in enumerate(text[1:], start=1):
        if char in "123456789-":
            return text[i:]
        if char == ".":
            return text[i - 1:]
        if char not in "0_":
            return None
    return text[-1]


def _clean_int_text(text: str) -> str | None:
    """An integer string with blanks, a '+', leading zeros, '.0+' and digit-group underscores removed;
    None when there was nothing to remove (then it was no integer)."""
    before = len(text)
    text = text.strip(_SPACE)
    if text.startswith("+"):
        text = text[1:]
        if text.startswith("-"):
            return None
    negative = text.startswith("-")
    if negative:
        text = text[1:]
        if text.startswith(("-", "+")):
            return None
    stripped = _strip_leading_zeros(text)
    if stripped is None:
        return None
    head, dot, tail = stripped.partition(".")
    if dot and tail and not tail.strip("0"):
        stripped = head
    if "_" in stripped and not stripped.startswith("_") and not stripped.endswith("_") and "__" not in stripped:
        stripped = stripped.replace("_", "")
    elif before == len(stripped):
        return None
    return "-" + stripped if negative else stripped


def lax_int(value: Any) -> int | None:
    """``value`` as an int when the contract accepts it for an ``int`` field, else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and -_I64 < value < _I64 else None
    if isinstance(value, str):
        if re.match(_JSON_INT, value):
            return _decimal_int(value)
        cleaned = _clean_int_text(value)
        return None if cleaned is None else _decimal_int(cleaned)
    return None


def lax_bool(value: Any) -> bool | None:
    """``value`` as a bool when the contract accepts it for a ``bool`` field, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return False if value == 0 else True if value == 1 else None
    if isinstance(value, str) and value.isascii():
        lowered = value.lower()
        return False if lowered in _FALSE else True if lowered in _TRUE else None
    return None


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the fields of a Struct -----------------------------------------------------------------------------


class _Field(NamedTuple):
    name: str  # the attribute
    wire: str  # the JSON key
    hint: Any  # the annotation, constraints included
    kind: Any  # int, bool, str, a Struct class, or None: what the lax rules look at
    required: bool


_FIELDS: dict[type[msgspec.Struct], tuple[_Field, ...]] = {}


def _unwrap(hint: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X (once more unwrapped); anything else unchanged."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if get_origin(hint) in (Union, types.UnionType):
        members = [m for m in get_args(hint) if m is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return hint


def _constrained(hint: Any) -> bool:
    if get_origin(hint) in (Union, types.UnionType):
        return any(_constrained(member) for member in get_args(hint))
    return get_origin(hint) is Annotated


def _kind(hint: Any) -> Any:
    """int, bool, a Struct class, str for a string with constraints (a plain ``str`` takes any string,
    lone surrogates included), or None for anything else."""
    base = _unwrap(hint)
    if base in (int, bool) or (isinstance(base, type) and issubclass(base, msgspec.Struct)):
        return base
    return str if base is str and _constrained(hint) else None


def _fields(cls: type[msgspec.Struct]) -> tuple[_Field, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        names, wires, defaults = cls.__struct_fields__, cls.__struct_encode_fields__, cls.__struct_defaults__
        first_default = len(names) - len(defaults)
        found = tuple(
            _Field(name, wire, hints[name], _kind(hints[name]),
                   i < first_default or defaults[i - first_default] is msgspec.NODEFAULT)
            for i, (name, wire) in enumerate(zip(names, wires, strict=True))
        )
        _FIELDS[cls] = found
    return found


def _prepare(cls: type[msgspec.Struct], data: Any) -> tuple[Any, bool]:
    """``data`` with the lax rules applied (a copy when anything changes), and whether every string
    field holds valid Unicode."""
    if not isinstance(data, dict):
        return data, True
    out, clean = data, True
    for field in _fields(cls):
        if field.wire in data:
            value = data[field.wire]
        elif field.name != field.wire and field.name in data:
            value = data[field.name]
        else:
            continue
        new = value
        if field.kind is bool:
            as_bool = lax_bool(value)
            new = value if as_bool is None else as_bool
        elif field.kind is int:
            if type(value) is not int:
                as_int = lax_int(value)
                new = value if as_int is None else as_int
        elif field.kind is str:
            clean = clean and (not isinstance(value, str) or _is_text(value))
        elif field.kind is not None:
            new, nested_clean = _prepare(field.kind, value)
            clean = clean and nested_clean
        if new is not value or field.wire not in data:
            if out is data:
                out = dict(data)
            out[field.wire] = new
    return out, clean


# --- problems ---------------------------------------------------------------------------------------------


def _allowed(hint: Any) -> str | None:
    """'a' or 'b' (or an object) for a Literal field, None for any other."""
    base = get_args(hint)[0] if get_origin(hint) is Annotated else hint
    members = get_args(base) if get_origin(base) in (Union, types.UnionType) else (base,)
    values = [repr(v) for m in members if get_origin(m) is Literal for v in get_args(m)]
    if not values:
        return None
    if any(isinstance(m, type) and issubclass(m, msgspec.Struct) for m in members):
        values.append("an object")
    return " or ".join(values)


def _problem(path: tuple[str, ...], problem: str, root: str) -> dict[str, str]:
    return {"field": ".".join(path) or root, "problem": problem}


def _from_msgspec(error: msgspec.ValidationError, path: tuple[str, ...], hint: Any, root: str) -> dict[str, str]:
    """msgspec's message (``Expected `int` >= 0 - at `$.after```) as a problem, never echoing a value."""
    matched = re.fullmatch(_AT, str(error))
    text, where = (matched.group(1), matched.group(2) or "") if matched else (str(error), "")
    steps = tuple(name or index for name, index in re.findall(_STEP, where))
    quoted = re.search(_QUOTED, text)
    if text.startswith("Object missing required field") and quoted:
        return _problem((*path, *steps, quoted.group(1)), "Field required", root)
    if text.startswith("Object contains unknown field") and quoted:
        return _problem((*path, *steps, quoted.group(1)[:64]), "Extra inputs are not permitted", root)
    if text.startswith("Invalid enum value"):
        allowed = _allowed(hint) if not steps else None
        return _problem((*path, *steps), f"Input should be {allowed}" if allowed else "Input is not an allowed value",
                        root)
    return _problem((*path, *steps), text, root)


def _problems(cls: type[msgspec.Struct], data: dict[str, Any], path: tuple[str, ...], root: str) -> list[dict[str, str]]:
    """Every field's problem (msgspec itself stops at the first)."""
    found: list[dict[str, str]] = []
    fields = _fields(cls)
    for field in fields:
        at = (*path, field.wire)
        if field.wire not in data:
            if field.required:
                found.append(_problem(at, "Field required", root))
            continue
        value = data[field.wire]
        if field.kind is str and isinstance(value, str) and not _is_text(value):
            found.append(_problem(at, "Input should be valid Unicode text", root))
        elif field.kind not in (None, int, bool, str) and isinstance(value, dict):
            found.extend(_problems(field.kind, value, at, root))
        else:
            try:
                msgspec.convert(value, field.hint)
            except msgspec.ValidationError as exc:
                found.append(_from_msgspec(exc, at, field.hint, root))
            except UnicodeEncodeError:
                found.append(_problem(at, "Input should be valid Unicode text", root))
    if cls.__struct_config__.forbid_unknown_fields:
        known = {field.wire for field in fields}
        found.extend(_problem((*path, _printable(key)[:64]), "Extra inputs are not permitted", root) for key in data
                     if key not in known)
    return found


def _printable(key: str) -> str:
    return key if _is_text(key) else key.encode("utf-8", "replace").decode()


def _without_undecodable_keys(cls: type[msgspec.Struct], data: Any) -> Any:
    """``data`` less the unknown keys that are not valid Unicode, which are ignored like any unknown key
    (but msgspec cannot read them), in ``cls`` and the Structs of its fields."""
    if not isinstance(data, dict) or cls.__struct_config__.forbid_unknown_fields:
        return data
    out = {key: value for key, value in data.items() if _is_text(key)}
    for field in _fields(cls):
        if field.kind not in (None, int, bool, str) and field.wire in out:
            out[field.wire] = _without_undecodable_keys(field.kind, out[field.wire])
    return out


def _convert(cls: type[S], data: dict[str, Any]) -> S:
    try:
        return msgspec.convert(data, cls)
    except UnicodeEncodeError:
        # msgspec reads object keys, and a string offered to a Literal, int or bool field, as UTF-8: a
        # lone surrogate there is a refusal (UnicodeEncodeError again), except in an unknown key.
        return msgspec.convert(_without_undecodable_keys(cls, data), cls)


_JSON_TYPES = {dict: "object", list: "array", str: "str", int: "int", float: "float", bool: "bool", type(None): "null"}


def validate(cls: type[S], data: Any, root: str) -> S:
    """``data`` (decoded JSON) as ``cls``; :class:`Invalid` naming the offending fields otherwise.

    ``root`` names the whole input (``frame``, ``body``) when the problem is not one field's."""
    if not isinstance(data, dict):
        problem = f"Expected `object`, got `{_JSON_TYPES.get(type(data), type(data).__name__)}`"
        raise Invalid(f"{root}: {problem}", problems=[{"field": root, "problem": problem}])
    prepared, clean = _prepare(cls, data)
    first: dict[str, str] = {"field": root, "problem": "invalid"}
    if clean:
        try:
            return _convert(cls, prepared)
        except msgspec.ValidationError as exc:
            first = _from_msgspec(exc, (), None, root)
        except UnicodeEncodeError:
            pass
    problems = _problems(cls, prepared, (), root) or [first]
    raise Invalid(f"{problems[0]['field']}: {problems[0]['problem']}", problems=problems)
