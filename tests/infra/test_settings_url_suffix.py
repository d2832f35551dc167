"""The ``@connections`` URL a deployed function pushes through is in its partition's domain.

The template hands every function ``URL_SUFFIX`` (``AWS::URLSuffix``: ``amazonaws.com``, or
``amazonaws.com.cn`` in the China Regions); without it the suffix comes from botocore's partition
data for the Region, never from a literal.
"""

from __future__ import annotations

import pytest

from chalicelib.settings import load

pytestmark = pytest.mark.infra


def test_the_endpoint_uses_the_url_suffix_the_stack_passes() -> None:
    settings = load(
        {"WEBSOCKET_API_ID": "abc123", "AWS_REGION": "cn-north-1", "URL_SUFFIX": "amazonaws.com.cn", "WEBSOCKET_STAGE": "api"}
    )
    assert settings.management_endpoint == "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/api"


@pytest.mark.parametrize(
    ("region", "suffix"),
    [("cn-northwest-1", "amazonaws.com.cn"), ("eu-west-1", "amazonaws.com"), ("us-gov-west-1", "amazonaws.com")],
)
def test_without_it_the_suffix_is_the_regions_partitions(region: str, suffix: str) -> None:
    settings = load({"WEBSOCKET_API_ID": "abc123", "AWS_REGION": region, "WEBSOCKET_STAGE": "api"})
    assert settings.management_endpoint == f"https://abc123.execute-api.{region}.{suffix}/api"


def test_a_full_endpoint_url_still_wins() -> None:
    settings = load(
        {"WEBSOCKET_ENDPOINT": "http://127.0.0.1:9000/", "WEBSOCKET_API_ID": "abc123", "URL_SUFFIX": "amazonaws.com.cn"}
    )
    assert settings.management_endpoint == "http://127.0.0.1:9000"
