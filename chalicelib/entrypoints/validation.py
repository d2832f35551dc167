"""The one JSON decoder (WebSocket frames, REST bodies, webhook events), the field types frames and
bodies share, and decoded JSON into ``msgspec.Struct`` types.

:func:`decode` bounds what it reads: at most ``max_bytes`` bytes, nested at most :data:`MAX_DEPTH`
arrays/objects deep, UTF-8 only (checked strictly first, :func:`check_utf8`), no lone UTF-16 surrogate
(``"\\ud800"``), numbers in range (a float's range; integers up to msgspec's limit, then each field
has its own bounds). Every failure is
:class:`Invalid` (or :class:`TooLarge`), never an internal error.

:func:`validate` is strict, as msgspec's strict mode is: a ``bool`` field takes only ``true``/``false``,
an ``int`` field only a JSON integer (no ``0``/``"yes"`` booleans, no ``5.0``, ``" 5 "``, ``"1_0"`` or
non-ASCII digits), a string only a JSON string. A renamed field (``msgspec.field(name=...)``) may also be
given by its Python name.

A refusal is :class:`Invalid` naming the offending fields (``details.problems``, a list of
``{"field", "problem"}``); the message never echoes a rejected value.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import msgspec

from chalicelib.domain.errors import Invalid, TooLarge
from chalicelib.domain.ids import CUSTOMER_ID_REGEX, ID_REGEX
from chalicelib.domain.text import NAME_REGEX, SECRET_REGEX, VISIBLE_REGEX
from chalicelib.entrypoints import msgspec_compat
from chalicelib.entrypoints.msgspec_compat import Kind

MAX_DEPTH = 32
MAX_TEXT_CHARS = 8000

# The largest ``after``: timeline keys hold 10-digit seq numbers, so after + 1 must stay below 10**10 (and a
# workitem never nears a billion entries). Larger numbers are refused before they reach DynamoDB.
MAX_SEQ = 999_999_999

Id = Annotated[str, msgspec.Meta(pattern=ID_REGEX)]
CustomerId = Annotated[str, msgspec.Meta(pattern=CUSTOMER_ID_REGEX)]
# Text with at least one visible character (whitespace and invisible characters alone are refused).
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_CHARS, pattern=VISIBLE_REGEX)]
# A client's own id for a message it may send again after a timeout (1-64 visible characters).
ClientMessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=VISIBLE_REGEX)]
# A display name: visible, without control or bidirectional-override characters.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=NAME_REGEX)]

# What a pattern refusal says instead of msgspec's "Expected `str` matching regex '...'".
_PATTERNS = {
    ID_REGEX: "Input should be an id: 1-128 ASCII letters, digits and . _ : @ + - (a letter or digit first)",
    CUSTOMER_ID_REGEX: "Input should be an id (1-128 ASCII letters, digits and . _ : @ + -, a letter or digit first) "
    "or an E.164 number (+ and 2-15 digits)",
    VISIBLE_REGEX: "Input should contain visible characters (not only whitespace or invisible ones)",
    NAME_REGEX: "Input should be a name with visible characters and no control or bidirectional-override characters",
    SECRET_REGEX: "Input should be 16 to 256 printable ASCII characters without spaces",
}

_DECODER = msgspec.json.Decoder()


# --- decoding ----------------------------------------------------------------------------------------


def _too_deep(data: Any) -> bool:
    """True when ``data`` nests arrays/objects more than MAX_DEPTH deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def check_utf8(raw: bytes, what: str) -> None:
    """Bytes are input: ``raw`` must be UTF-8, strictly (no overlong forms, no encoded surrogates, nothing
    past U+10FFFF, no sequence cut short), else :class:`Invalid` before anything else reads it."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"the {what} is not valid UTF-8 text") from exc


def decode(raw: bytes | str | None, what: str, max_bytes: int) -> Any:
    """``raw`` (JSON text) decoded, within the limits above; :class:`Invalid` or :class:`TooLarge` otherwise."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Invalid(f"the {what} is not valid UTF-8 text") from exc
    raw = raw or b""
    if len(raw) > max_bytes:
        raise TooLarge(f"the {what} may carry at most {max_bytes} bytes")
    check_utf8(raw, what)
    try:
        data = _DECODER.decode(raw)
    except RecursionError as exc:
        raise Invalid(f"the {what} is nested more than {MAX_DEPTH} levels deep") from exc
    except msgspec.ValidationError as exc:  # a number out of range
        raise Invalid(f"the {what} holds a number out of range") from exc
    except msgspec.DecodeError as exc:
        raise Invalid(f"the {what} is not valid JSON") from exc
    if _too_deep(data):
        raise Invalid(f"the {what} is nested more than {MAX_DEPTH} levels deep")
    return data


class _RequestId(msgspec.Struct):
    requestId: str | None = None


_PEEK = msgspec.json.Decoder(_RequestId)
MAX_PEEK_BYTES = 256 * 1024  # more than API Gateway lets through (128 KB)


def request_id_of(raw: bytes | str | None) -> str | None:
    """The ``requestId`` of a frame refused as too large, so its error still correlates; None when it has
    none that can be read (only the key is decoded; the frame is not otherwise used)."""
    try:
        data = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
        if len(data) > MAX_PEEK_BYTES:
            return None
        rid = _PEEK.decode(data).requestId
    except (UnicodeEncodeError, RecursionError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return rid if rid is not None and len(rid) <= 128 else None


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
    kind: Any  # str, a Struct class, or None
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
    """A Struct class, str for a string with constraints (a plain ``str`` takes any string, lone
    surrogates included), or None for anything else."""
    base = _unwrap(hint)
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        return base
    return str if base is str and _constrained(hint) else None


def _fields(cls: type[msgspec.Struct]) -> tuple[_Field, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        names, wires, defaults = cls.__struct_fields__, cls.__struct_encode_fields__, cls.__struct_defaults__
        first_default = len(names) - len(defaults)
        found = tuple(
            _Field(
                name, wire, hints[name], _kind(hints[name]), i < first_default or defaults[i - first_default] is msgspec.NODEFAULT
            )
            for i, (name, wire) in enumerate(zip(names, wires, strict=True))
        )
        _FIELDS[cls] = found
    return found


def _prepare(cls: type[msgspec.Struct], data: Any) -> tuple[Any, bool]:
    """``data`` with renamed fields under their wire name (a copy when anything changes), and whether
    every constrained string field holds valid Unicode (decoded JSON always does; a dict built in
    Python may not)."""
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
        if field.kind is str:
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
    refusal = msgspec_compat.read(error)
    kind, text, steps = refusal.kind, refusal.text, refusal.steps
    if kind is Kind.MISSING_FIELD and refusal.quoted is not None:
        return _problem((*path, *steps, refusal.quoted), "Field required", root)
    if kind is Kind.UNKNOWN_FIELD and refusal.quoted is not None:
        return _problem((*path, *steps, refusal.quoted[:64]), "Extra inputs are not permitted", root)
    if kind is Kind.NOT_ALLOWED:
        allowed = _allowed(hint) if not steps else None
        return _problem((*path, *steps), f"Input should be {allowed}" if allowed else "Input is not an allowed value", root)
    if kind is Kind.NO_MATCH:
        for regex, problem in _PATTERNS.items():
            if repr(regex) in text:
                return _problem((*path, *steps), problem, root)
        return _problem((*path, *steps), "Input is not in the expected format", root)
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
        elif field.kind not in (None, str) and isinstance(value, dict):
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
        found.extend(
            _problem((*path, _printable(key)[:64]), "Extra inputs are not permitted", root) for key in data if key not in known
        )
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
        if field.kind not in (None, str) and field.wire in out:
            out[field.wire] = _without_undecodable_keys(field.kind, out[field.wire])
    return out


def _convert[S: msgspec.Struct](cls: type[S], data: dict[str, Any]) -> S:
    try:
        return msgspec.convert(data, cls)
    except UnicodeEncodeError:
        # msgspec reads object keys, and a string offered to a Literal, int or bool field, as UTF-8: a
        # lone surrogate there is a refusal (UnicodeEncodeError again), except in an unknown key.
        return msgspec.convert(_without_undecodable_keys(cls, data), cls)


_JSON_TYPES = {dict: "object", list: "array", str: "str", int: "int", float: "float", bool: "bool", type(None): "null"}


def validate[S: msgspec.Struct](cls: type[S], data: Any, root: str) -> S:
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
