"""ApiGatewayPusher.close: ``DeleteConnection`` through the real boto3 client, answers stubbed by botocore."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.adapters.push import ApiGatewayPusher

pytestmark = pytest.mark.integration

ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"


def _pusher() -> tuple[ApiGatewayPusher, Any]:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=ENDPOINT,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return ApiGatewayPusher(ENDPOINT, "eu-west-1", client=client), client


def test_close_deletes_the_connection() -> None:
    pusher, client = _pusher()
    with Stubber(client) as stub:
        stub.add_response("delete_connection", {}, {"ConnectionId": "abc="})
        pusher.close("abc=")
        stub.assert_no_pending_responses()


def test_closing_a_connection_that_is_gone_already_is_fine() -> None:
    pusher, client = _pusher()
    with Stubber(client) as stub:
        stub.add_client_error("delete_connection", service_error_code="GoneException", http_status_code=410)
        pusher.close("old=")


def test_other_failures_to_close_are_raised() -> None:
    pusher, client = _pusher()
    with Stubber(client) as stub:
        stub.add_client_error("delete_connection", service_error_code="ForbiddenException", http_status_code=403)
        with pytest.raises(ClientError):
            pusher.close("abc=")
