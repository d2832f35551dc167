"""What counts as text: the rules for messages, names and secrets (regular expressions, so that the
frame and body schemas can check them while decoding).

* Text must hold at least one visible character: empty text, and text made only of whitespace or
  invisible characters (zero-width spaces and joiners, word joiner, byte-order mark, soft hyphen,
  bidirectional marks and overrides, variation selectors, Hangul and braille blanks, tags...), is refused.
* A name (users, teams, customers) is text as above that also holds no control character (NUL, line
  breaks, tabs...) and no bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069), which could
  make a name display as something else.
* A webhook secret is 16 to 256 printable ASCII characters with no space.
"""

from __future__ import annotations

# Characters that show nothing by themselves: Unicode White_Space (``\s``), C0/C1 controls, and the
# default-ignorable and blank code points.
INVISIBLE = (
    "\\s\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f"
    "\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u206f\\u2800\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff0-\\ufffb"
    "\\U0001d173-\\U0001d17a\\U000e0000-\\U000e0fff"
)
# Never in a name: controls, bidirectional marks, embeddings, overrides and isolates.
_NOT_IN_NAMES = "\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"

# re.search semantics: somewhere in the text there is one visible character.
VISIBLE_REGEX = f"[^{INVISIBLE}]"
NAME_REGEX = f"^(?![{INVISIBLE}]*\\Z)[^{_NOT_IN_NAMES}]*\\Z"
SECRET_REGEX = "^[\\x21-\\x7e]{16,256}\\Z"  # noqa: S105 - a pattern, not a secret
