"""The offline sentiment analyzer of the local stack and the tests: VADER, an English lexicon that needs
no network (``requirements-dev.txt``; never in the Lambda zip, where Amazon Comprehend answers).

Imported on first use: building the analyzer reads its lexicon files (about 0.1 s), once per process.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.domain.sentiment import Sentiment, analysable, from_scores


class LexiconSentiment:
    def __init__(self) -> None:
        self._analyzer: Any = None
        self._lock = threading.Lock()

    def _vader(self) -> Any:
        if self._analyzer is None:
            with self._lock:
                if self._analyzer is None:
                    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                    self._analyzer = SentimentIntensityAnalyzer()
        return self._analyzer

    def analyze(self, texts: list[str], language: str = "en") -> list[Sentiment | None]:
        """One label per text (None for blank text). English only: text in another language has no label
        (VADER would read it as English and call most of it neutral)."""
        if language != "en":
            return [None] * len(texts)
        vader = self._vader()
        return [from_scores(vader.polarity_scores(t)) if analysable(t) else None for t in texts]
