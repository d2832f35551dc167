"""The sentiment of a customer's message: its four labels, the languages it is analysed in, and the
rules shared by every analyzer (docs/product.md W11.8, docs/attention.md "Sentiment").

Amazon Comprehend (on AWS) and Amazon Transcribe Call Analytics (voice) both answer one of
``POSITIVE | NEGATIVE | NEUTRAL | MIXED``, which are these labels in lower case. The local stack's
lexicon analyzer (VADER) answers scores instead; :func:`from_scores` turns them into a label.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Sentiment(str, enum.Enum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    MIXED = "mixed"

    @classmethod
    def from_label(cls, label: str) -> Sentiment | None:
        """Comprehend's or Transcribe's label (``NEGATIVE``), or None for anything else."""
        try:
            return cls(label.lower())
        except ValueError:
            return None


# Comprehend's LanguageCode values (botocore's model of DetectSentiment / BatchDetectSentiment).
LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW")
DEFAULT_LANGUAGE = "en"

# Comprehend takes documents of fewer than 5,000 bytes of UTF-8 and at most 25 of them per batch.
MAX_DOCUMENT_BYTES = 4999
MAX_BATCH_DOCUMENTS = 25

# VADER's compound score: at or above +0.05 positive, at or below -0.05 negative (its authors' thresholds).
COMPOUND_THRESHOLD = 0.05
# Mixed: both sides present, the weaker at least half the stronger, and the compound short of clear.
MIXED_BALANCE = 0.5
MIXED_COMPOUND = 0.5


def truncate_utf8(text: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8, on a character boundary (never half a
    character). A lone surrogate, which UTF-8 cannot carry, becomes ``?``."""
    data = text.encode("utf-8", "replace")
    return data[:max_bytes].decode("utf-8", "ignore")


def analysable(text: str | None) -> bool:
    """Whether there is anything to analyse (Comprehend refuses an empty document)."""
    return bool(text and text.strip())


def from_scores(scores: Mapping[str, float]) -> Sentiment:
    """A label from VADER's ``polarity_scores`` (``neg``, ``neu``, ``pos`` proportions, ``compound``).

    Text with only negative words is ``negative`` and with only positive ones ``positive`` (``mixed``
    needs both); text whose positive and negative parts are close in weight and whose compound is not
    clear-cut is ``mixed``; otherwise the compound decides, and near zero is ``neutral``."""
    compound, positive, negative = scores.get("compound", 0.0), scores.get("pos", 0.0), scores.get("neg", 0.0)
    balanced = positive > 0 and negative > 0 and min(positive, negative) / max(positive, negative) >= MIXED_BALANCE
    if balanced and abs(compound) < MIXED_COMPOUND:
        return Sentiment.MIXED
    if compound >= COMPOUND_THRESHOLD:
        return Sentiment.POSITIVE
    if compound <= -COMPOUND_THRESHOLD:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL
