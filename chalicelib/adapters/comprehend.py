"""The sentiment of customer messages from Amazon Comprehend (``BatchDetectSentiment``).

Comprehend takes at most 25 documents a call, each fewer than 5,000 bytes of UTF-8 and not empty, all in
one of its languages (``domain/sentiment.py``). Longer messages are cut on a character boundary; blank
ones are not sent. A document Comprehend refuses comes back in its ``ErrorList`` (the call still
succeeds) and gets no label; results are matched by ``Index``, never by position.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.adapters.lazy_client import lazy_client
from chalicelib.adapters.sdk_budget import COMPREHEND
from chalicelib.domain.sentiment import DEFAULT_LANGUAGE, LANGUAGES, MAX_BATCH_DOCUMENTS, Sentiment, analysable, truncate_utf8

log = logging.getLogger(__name__)


class ComprehendSentiment:
    def __init__(self, region: str, client: Any = None) -> None:
        self._client = lazy_client("comprehend", region, COMPREHEND, client)

    @property
    def client(self) -> Any:
        return self._client()

    def analyze(self, texts: list[str], language: str = DEFAULT_LANGUAGE) -> list[Sentiment | None]:
        """One label per text (None: blank, or refused by Comprehend). 1 BatchDetectSentiment per 25
        texts worth analysing."""
        if language not in LANGUAGES:
            language = DEFAULT_LANGUAGE
        out: list[Sentiment | None] = [None] * len(texts)
        wanted = [i for i, text in enumerate(texts) if analysable(text)]
        for start in range(0, len(wanted), MAX_BATCH_DOCUMENTS):
            chunk = wanted[start : start + MAX_BATCH_DOCUMENTS]
            answer = self.client.batch_detect_sentiment(TextList=[truncate_utf8(texts[i]) for i in chunk], LanguageCode=language)
            for result in answer.get("ResultList", []):
                index = result.get("Index")
                if isinstance(index, int) and 0 <= index < len(chunk):
                    out[chunk[index]] = Sentiment.from_label(str(result.get("Sentiment", "")))
            for error in answer.get("ErrorList", []):
                log.warning("Comprehend refused a document (%s)", error.get("ErrorCode"))
        return out
