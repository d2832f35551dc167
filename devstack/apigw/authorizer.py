"""The WebSocket API's REQUEST authorizer, invoked and judged the way API Gateway does it.

The authorizer is a plain ``lambda_function`` of the app. Its answer must be a policy that allows
``execute-api:Invoke`` on the ``$connect`` ARN (an explicit Deny wins); its ``context`` reaches every
later event as ``requestContext.authorizer``, with values turned into strings as API Gateway turns
them. An ``Unauthorized`` exception is 401, a denial 403, anything else 500, all before the upgrade.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from chalice.local import ARNMatcher

from devstack.apigw.lambdas import Event, Invoker

log = logging.getLogger("devstack.gateway")  # one logger for every part of the gateway


class Refused(Exception):
    """The handshake is answered with an HTTP error instead of an upgrade."""

    def __init__(self, status: int, body: Mapping[str, Any], error_type: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.error_type = error_type

    def response(self) -> web.Response:
        headers = {"x-amzn-ErrorType": self.error_type} if self.error_type else None
        return web.json_response(self.body, status=self.status, headers=headers)


class RequestAuthorizer:
    """Runs the handler named ``name`` (if the app has one) for each ``$connect``."""

    def __init__(self, invoker: Invoker, name: str, connect_arn: str) -> None:
        self.invoker = invoker
        self.name = name
        self.connect_arn = connect_arn

    async def authorize(self, event: Event, connection_id: str) -> dict[str, Any] | None:
        """Run the REQUEST authorizer; return the ``requestContext.authorizer`` map or refuse."""
        handler = self.invoker.handler(self.name)
        if handler is None:
            return None
        try:
            # The HS256 authorizer needs no store: it never waits behind handlers stuck on one.
            result = await self.invoker.invoke(self.name, handler, event, self.invoker.fast_executor)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                raise Refused(401, {"message": "Unauthorized"}, "UnauthorizedException") from None
            log.exception("authorizer %s failed for connection %s", self.name, connection_id)
            raise Refused(500, {"message": None}, "AuthorizerConfigurationException") from None
        try:
            principal_id, context, allowed = evaluate_policy(result, self.connect_arn)
        except ValueError as bad:
            log.error("authorizer %s returned an invalid response: %s", self.name, bad)
            raise Refused(500, {"message": None}, "AuthorizerConfigurationException") from None
        if not allowed:
            raise Refused(403, {"message": "Forbidden"}, "AccessDeniedException")
        return {**context, "principalId": principal_id}


def evaluate_policy(result: Any, connect_arn: str) -> tuple[str, dict[str, Any], bool]:
    """Check an authorizer response like API Gateway does: (principalId, context, allowed)."""
    if not isinstance(result, Mapping):
        raise ValueError(f"expected a dict, got {type(result).__name__}")
    principal_id = result.get("principalId")
    policy = result.get("policyDocument")
    if not isinstance(principal_id, str) or not isinstance(policy, Mapping):
        raise ValueError("principalId (str) and policyDocument are required")
    statements = policy.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise ValueError("policyDocument.Statement must be a list")
    matcher = ARNMatcher(connect_arn)
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping):
            raise ValueError("policy statements must be objects")
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else list(actions)
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else list(resources)
        if not matcher.does_any_resource_match(resources):
            continue
        if statement.get("Effect") == "Deny":
            return principal_id, {}, False  # an explicit Deny wins
        allowed = allowed or statement.get("Effect") == "Allow"
    return principal_id, authorizer_context(result.get("context")), allowed


def authorizer_context(raw: Any) -> dict[str, Any]:
    """API Gateway passes only string/number/boolean context values, as strings; anything else is a 500."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("context must be an object")
    context: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            context[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            context[key] = str(value)
        elif value is None:
            continue
        else:
            raise ValueError(f"context value {key!r} must be a string, number or boolean")
    return context
