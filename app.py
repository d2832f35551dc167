"""Routes and WebSocket handlers of the supervisor coaching backend: wiring only.

Each handler hands the event to ``chalicelib.entrypoints`` in one line. Importing this module needs
no environment and creates no AWS client (``chalice package`` imports it).
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, Rate, Response, WebsocketEvent

from chalicelib import entrypoints as ep
from chalicelib import logs

app = Chalice(app_name="supervisor-coaching")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.api.binary_types = []
logs.configure()


def _json(result: tuple[int, Any]) -> Response:
    status, body = result
    return Response(
        body=body if body is not None else "",
        status_code=status,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )


def _req() -> Any:
    return app.current_request


# --- WebSocket -------------------------------------------------------------------------------------


@app.lambda_function(name="ws_authorizer")
def ws_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ep.authorize(event)


@app.on_ws_connect(name="ws_connect")
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    return ep.ws_connect(event.to_dict())


@app.on_ws_message(name="ws_message")
def ws_message(event: WebsocketEvent) -> dict[str, Any]:
    return ep.ws_message(event.to_dict())


@app.on_ws_disconnect(name="ws_disconnect")
def ws_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return ep.ws_disconnect(event.to_dict())


# --- scheduled and voice ---------------------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES), name="escalate_assistance")
def escalate_assistance(event: Any) -> dict[str, Any]:
    return ep.escalate()


@app.lambda_function(name="fanout")
def fanout(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ep.fan_out(event)


@app.lambda_function(name="sma_handler")
def sma_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ep.sma(event)


# --- REST ------------------------------------------------------------------------------------------


@app.middleware("http")
def contract_errors(event: Any, get_response: Any) -> Response:
    """Chalice's own refusals (405, 415, ...) in the contract's error shape."""
    response: Response = ep.error_shape(get_response(event))
    return response


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _json((200, {"status": "ok"}))


@app.route("/admin/users/{userId}", methods=["PUT"])
def put_user(userId: str) -> Response:
    return _json(
        ep.rest(_req(), lambda s, c, b: s.directory.put_user(c, ep.check_id(userId, "userId"), b.name, b.role), ep.UserBody)
    )


@app.route("/admin/users/{userId}/revoke", methods=["POST"])
def revoke_user(userId: str) -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.sessions.revoke(c, ep.check_id(userId, "userId"))))


@app.route("/admin/teams/{teamId}", methods=["PUT"])
def put_team(teamId: str) -> Response:
    return _json(
        ep.rest(
            _req(),
            lambda s, c, b: s.directory.put_team(c, ep.check_id(teamId, "teamId"), b.name, b.supervisors, b.agents),
            ep.TeamBody,
        )
    )


@app.route("/admin/templates", methods=["GET"])
def list_templates() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.directory.list_templates(c)))


@app.route("/admin/templates/{templateId}", methods=["PUT"])
def put_template(templateId: str) -> Response:
    return _json(
        ep.rest(
            _req(),
            lambda s, c, b: s.directory.put_template(c, ep.check_id(templateId, "templateId"), b.text, b.enabled),
            ep.TemplateBody,
        )
    )


@app.route("/admin/templates/{templateId}", methods=["DELETE"])
def delete_template(templateId: str) -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.directory.delete_template(c, ep.check_id(templateId, "templateId"))))


@app.route("/admin/policy", methods=["GET"])
def get_policy() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.directory.get_policy(c)))


@app.route("/admin/policy", methods=["PUT"])
def put_policy() -> Response:
    return _json(
        ep.rest(
            _req(),
            lambda s, c, b: s.directory.put_policy(c, b.recordCoaching, b.escalationSeconds, b.retentionDays),
            ep.PolicyBody,
        )
    )


@app.route("/admin/webhook-secret", methods=["PUT"])
def put_webhook_secret() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.directory.set_webhook_secret(c, b.secret), ep.WebhookSecretBody))


@app.route("/me/settings", methods=["GET"])
def get_settings() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.directory.get_settings(c)))


@app.route("/me/settings", methods=["PUT"])
def put_settings() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.directory.put_settings(c, b.agentMessageNotification), ep.SettingsBody))


@app.route("/agents/{agentId}/workitems", methods=["GET"])
def agent_workitems(agentId: str) -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.coaching.workitems(c, ep.check_id(agentId, "agentId"))))


@app.route("/workitems/{workitemId}/timeline", methods=["GET"])
def timeline(workitemId: str) -> Response:
    return _json(
        ep.rest(
            _req(), lambda s, c, b: s.coaching.timeline(c, ep.check_id(workitemId, "workitemId"), *ep.page(_req().query_params))
        )
    )


@app.route("/workitems/{workitemId}/export", methods=["GET"])
def export(workitemId: str) -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.coaching.export(c, ep.check_id(workitemId, "workitemId"))))


@app.route("/webhooks/events", methods=["POST"])
def webhook_events() -> Response:
    return _json(ep.webhook(_req()))


# --- outbound webhooks and channel delivery (docs/webhooks.md) -------------------------------------


@app.on_sqs_message(queue="coaching-webhook-deliveries", batch_size=1, name="deliver_webhooks")
def deliver_webhooks(event: Any) -> dict[str, Any]:
    return ep.deliver_webhooks(event.to_dict().get("Records") or [])


@app.route("/admin/webhook-subscriptions", methods=["GET"])
def list_webhook_subscriptions() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.integrations.list_subscriptions(c)))


@app.route("/admin/webhook-subscriptions/{subscriptionId}", methods=["PUT"])
def put_webhook_subscription(subscriptionId: str) -> Response:
    return _json(
        ep.rest(
            _req(),
            lambda s, c, b: s.integrations.put_subscription(
                c, ep.check_id(subscriptionId, "subscriptionId"), b.url, b.events, b.enabled
            ),
            ep.SubscriptionBody,
        )
    )


@app.route("/admin/webhook-subscriptions/{subscriptionId}", methods=["DELETE"])
def delete_webhook_subscription(subscriptionId: str) -> Response:
    return _json(
        ep.rest(_req(), lambda s, c, b: s.integrations.delete_subscription(c, ep.check_id(subscriptionId, "subscriptionId")))
    )


@app.route("/admin/webhook-subscriptions/{subscriptionId}/rotate-secret", methods=["POST"])
def rotate_webhook_secret(subscriptionId: str) -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.integrations.rotate_secret(c, ep.check_id(subscriptionId, "subscriptionId"))))


@app.route("/admin/webhook-deliveries/replay", methods=["POST"])
def replay_webhook_deliveries() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.integrations.replay(c)))


@app.route("/admin/sms-settings", methods=["GET"])
def get_sms_settings() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.integrations.get_sms_settings(c)))


@app.route("/admin/sms-settings", methods=["PUT"])
def put_sms_settings() -> Response:
    return _json(ep.rest(_req(), lambda s, c, b: s.integrations.put_sms_settings(c, b.originationIdentity), ep.SmsSettingsBody))
