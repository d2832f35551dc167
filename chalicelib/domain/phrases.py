"""Whole-word phrase matching for keyword rules (docs/product.md W11.2, docs/attention.md "Matching").

A phrase matches a text when the text holds the phrase's words in a row, as whole words, whatever
their case, accents and Unicode compatibility forms: "REFUND", "Refund!" and "refünd" match "refund";
"refunds" and "prefund" do not (no stemming: list the plural as a phrase of its own). Both sides go
through the one :func:`words` function, so whatever it does, it does to the phrase and the text alike:

1. NFKC: compatibility forms become their plain letters (the full-width letters of East Asian fonts, the ligature "ﬁ",
   superscript digits, the half-width katakana).
2. Case folding (``str.casefold``, Unicode's full folding, not lower-casing): "ß" folds to "ss", so
   "Straße", "STRASSE" and "strasse" are one word; the Greek final sigma folds like the other sigmas.
3. Accents go: after NFD, the combining marks of the general diacritics blocks (U+0300-U+036F and
   their supplements) are dropped. Marks that belong to other scripts (the Japanese voicing marks of
   が, Thai and Devanagari vowel signs, Arabic harakat) stay part of their word: dropping them would
   merge different words.
4. Turkish: "İ" folds to "i" plus a combining dot that step 3 drops, and the dotless i (U+0131) counts
   as "i" too, so "İADE", "IADE", "iade" and the dotless spelling are one word. No locale is assumed, so Turkish words
   that differ only by the dot also match each other (rare; a false alert is cheaper than a missed one).

A word is a run of letters and digits together with the combining marks that follow them; everything
else separates words ("_", punctuation, spaces, symbols, emoji). "customer's" is the two words
"customer" "s" and "e-mail" is "e" "mail", so a phrase written the same way matches. Scripts written
without spaces between words (Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer, Myanmar) have no word
boundaries to find: there every character (with its marks) is a word of its own, so a phrase in those
scripts matches wherever its characters appear in a row: "退款" matches in "我要退款", and also inside a
longer word such as "退款单"; Korean particles attach to nouns, so "환불" matches "환불을" the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Scripts without spaces between words: each character is a word.
_UNSPACED = re.compile(
    "["
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended A
    "\uac00-\ud7af"  # Hangul syllables
    "\ud7b0-\ud7ff"  # Hangul Jamo extended B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B-G
    "]"
)
# The combining marks dropped as accents: the general diacritics blocks only.
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """``text`` with case, accents and compatibility forms folded away (steps 1-4 above)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _ACCENTS.sub("", unicodedata.normalize("NFD", folded))
    return unicodedata.normalize("NFC", folded).replace("\u0131", "i")


def words(text: str) -> tuple[str, ...]:
    """The folded words of ``text``, in order."""
    out: list[str] = []
    current: list[str] = []
    unspaced = False  # whether ``current`` is one character of an unspaced script

    def flush() -> None:
        if current:
            out.append("".join(current))
            current.clear()

    for ch in fold(text):
        category = unicodedata.category(ch)[0]
        if category == "M" and current:  # a mark stays with the letter before it
            current.append(ch)
        elif _UNSPACED.match(ch):
            flush()
            current.append(ch)
            unspaced = True
        elif category in "LN":
            if unspaced:
                flush()
                unspaced = False
            current.append(ch)
        else:
            flush()
            unspaced = False
    flush()
    return tuple(out)


class Phrase:
    """One phrase of a keyword rule, as written and as the words it matches."""

    __slots__ = ("text", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = words(text)

    def __repr__(self) -> str:
        return f"Phrase({self.text!r})"

    def found_in(self, text_words: tuple[str, ...], present: frozenset[str] | None = None) -> bool:
        """Whether the phrase's words appear in a row in ``text_words`` (``present``: their set, to skip
        a phrase whose first word is absent without a search)."""
        n = len(self.words)
        if not n or n > len(text_words):
            return False
        first = self.words[0]
        if present is not None and first not in present:
            return False
        return any(
            word == first and text_words[i : i + n] == self.words for i, word in enumerate(text_words[: len(text_words) - n + 1])
        )


def first_match(phrases: Iterable[Phrase], text: str) -> Phrase | None:
    """The first of ``phrases`` (in their order) that ``text`` holds, or None."""
    text_words = words(text)
    present = frozenset(text_words)
    return next((p for p in phrases if p.found_in(text_words, present)), None)
