"""The Amazon Comprehend adapter (chalicelib/adapters/comprehend.py) against botocore's model of
BatchDetectSentiment, with Stubber: at most 25 documents a call, each under 5,000 bytes of UTF-8, blank
ones never sent, results matched by Index, refused documents left without a label."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.comprehend import ComprehendSentiment
from chalicelib.domain.sentiment import Sentiment

pytestmark = pytest.mark.unit


def _client() -> tuple[object, Stubber]:
    client = boto3.client("comprehend", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _scores() -> dict[str, float]:
    return {"Positive": 0.1, "Negative": 0.8, "Neutral": 0.05, "Mixed": 0.05}


def test_batches_of_twenty_five_truncated_by_index_and_errors() -> None:
    client, stub = _client()
    texts = [f"message {i}" for i in range(27)]
    texts[3] = "   "  # blank: never sent
    texts[5] = "é" * 3000  # 6,000 bytes: cut below 5,000
    sent = [i for i in range(27) if i != 3]
    first, second = sent[:25], sent[25:]
    first_texts = [texts[i] if i != 5 else "é" * 2499 for i in first]
    stub.add_response(
        "batch_detect_sentiment",
        {
            # Out of order on purpose, and document 1 refused.
            "ResultList": [{"Index": 2, "Sentiment": "POSITIVE", "SentimentScore": _scores()}]
            + [{"Index": n, "Sentiment": "NEGATIVE", "SentimentScore": _scores()} for n in range(25) if n not in (1, 2)],
            "ErrorList": [{"Index": 1, "ErrorCode": "INTERNAL_SERVER_ERROR", "ErrorMessage": "try later"}],
        },
        {"TextList": first_texts, "LanguageCode": "en"},
    )
    stub.add_response(
        "batch_detect_sentiment",
        {"ResultList": [{"Index": n, "Sentiment": "MIXED", "SentimentScore": _scores()} for n in range(2)], "ErrorList": []},
        {"TextList": [texts[i] for i in second], "LanguageCode": "en"},
    )
    with stub:
        labels = ComprehendSentiment("us-east-1", client).analyze(texts, "xx")  # an unknown language: English
    stub.assert_no_pending_responses()
    assert labels[0] is Sentiment.NEGATIVE and labels[1] is None and labels[2] is Sentiment.POSITIVE
    assert labels[3] is None and labels[5] is Sentiment.NEGATIVE
    assert labels[25] is Sentiment.NEGATIVE  # the 25th document of the first call
    assert second == [26] and labels[26] is Sentiment.MIXED  # an Index past the call's documents is ignored
    assert all(len(t.encode()) < 5000 for t in first_texts)


def test_nothing_to_analyse_makes_no_call() -> None:
    client, stub = _client()
    with stub:
        assert ComprehendSentiment("us-east-1", client).analyze(["", " \n"], "de") == [None, None]
    stub.assert_no_pending_responses()
