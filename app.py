"""Routes and WebSocket handlers of the supervisor coaching backend: wiring only.

Each handler hands the event to a named function of ``chalicelib.entrypoints`` (``rest``, ``ws``,
``events``) in one line. Importing this module needs no environment and creates no AWS client
(``chalice package`` imports it).
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, Rate, Request, Response, WebsocketEvent

from chalicelib import logs, metrics
from chalicelib.entrypoints import events, rest, ws

app = Chalice(app_name="supervisor-coaching")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.api.binary_types = []
logs.configure()


@app.middleware("all")
def log_context(event: Any, get_response: Any) -> Any:
    """Every handler's log lines carry its invocation's Lambda context and API Gateway's keys, and only
    its own (docs/logs.md); what it recorded in metrics is written when it ends (docs/operations.md)."""
    request_context: Any = None
    if isinstance(event, Request):
        lambda_context, request_context = event.lambda_context, event.context
    else:
        lambda_context = getattr(event, "context", None)
        raw = event.to_dict() if event is not None else None
        request_context = raw.get("requestContext") if isinstance(raw, dict) else None
    with logs.invocation(lambda_context, **logs.gateway_fields(request_context)), metrics.invocation():
        return get_response(event)


def _json(result: tuple[int, Any]) -> Response:
    status, body = result
    return Response(
        body=body if body is not None else "",
        status_code=status,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )


def _json_or_csv(result: tuple[int, Any]) -> Response:
    """A report as JSON, or (text) as a CSV download."""
    status, body = result
    if not isinstance(body, str):
        return _json(result)
    return Response(body=body, status_code=status, headers=rest.CSV_HEADERS)


# --- WebSocket -------------------------------------------------------------------------------------


@app.lambda_function(name="ws_authorizer")
def ws_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ws.authorize(event)


@app.on_ws_connect(name="ws_connect")
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    return ws.connect(event.to_dict())


@app.on_ws_message(name="ws_message")
def ws_message(event: WebsocketEvent) -> dict[str, Any]:
    return ws.message(event.to_dict())


@app.on_ws_disconnect(name="ws_disconnect")
def ws_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return ws.disconnect(event.to_dict())


# --- stream, schedule, delivery queue, SIP media ----------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES), name="escalate_assistance")
def escalate_assistance(event: Any) -> dict[str, Any]:
    return events.escalate()


@app.lambda_function(name="fanout")
def fanout(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return events.fan_out(event)


@app.lambda_function(name="sma_handler")
def sma_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return events.on_sip_media_event(event)


@app.lambda_function(name="sms_inbound")
def sms_inbound(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return events.on_sms_inbound(event)


@app.lambda_function(name="connect_events")
def connect_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return events.on_connect_event(event)


@app.lambda_function(name="media_pipeline_events")
def media_pipeline_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return events.on_media_pipeline_event(event)


@app.lambda_function(name="transcript_records")
def transcript_records(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return events.on_transcript_records(event)


@app.on_sqs_message(queue="coaching-webhook-deliveries", batch_size=1, name="deliver_webhooks")
def deliver_webhooks(event: Any) -> dict[str, Any]:
    return events.deliver_webhooks(event.to_dict().get("Records") or [])


# --- REST ------------------------------------------------------------------------------------------


@app.middleware("http")
def contract_errors(event: Any, get_response: Any) -> Response:
    """A body that is not UTF-8 refused before anything else; Chalice's own refusals (405, 415, ...) in the
    contract's error shape; every answer with the CORS header when it goes to the web console's origin
    (docs/deploy.md)."""
    response: Response = rest.checked(event, get_response)
    return response


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _json(rest.health())


@app.route("/admin/users/{userId}", methods=["PUT"])
def put_user(userId: str) -> Response:
    return _json(rest.put_user(app.current_request, userId))


@app.route("/admin/users/{userId}/revoke", methods=["POST"])
def revoke_user(userId: str) -> Response:
    return _json(rest.revoke_user(app.current_request, userId))


@app.route("/admin/teams/{teamId}", methods=["PUT"])
def put_team(teamId: str) -> Response:
    return _json(rest.put_team(app.current_request, teamId))


@app.route("/admin/templates", methods=["GET"])
def list_templates() -> Response:
    return _json(rest.list_templates(app.current_request))


@app.route("/admin/templates/{templateId}", methods=["PUT"])
def put_template(templateId: str) -> Response:
    return _json(rest.put_template(app.current_request, templateId))


@app.route("/admin/templates/{templateId}", methods=["DELETE"])
def delete_template(templateId: str) -> Response:
    return _json(rest.delete_template(app.current_request, templateId))


@app.route("/admin/attention-rules", methods=["GET"])
def list_attention_rules() -> Response:
    return _json(rest.list_attention_rules(app.current_request))


@app.route("/admin/attention-rules/{ruleId}", methods=["PUT"])
def put_attention_rule(ruleId: str) -> Response:
    return _json(rest.put_attention_rule(app.current_request, ruleId))


@app.route("/admin/attention-rules/{ruleId}", methods=["DELETE"])
def delete_attention_rule(ruleId: str) -> Response:
    return _json(rest.delete_attention_rule(app.current_request, ruleId))


@app.route("/admin/policy", methods=["GET"])
def get_policy() -> Response:
    return _json(rest.get_policy(app.current_request))


@app.route("/admin/policy", methods=["PUT"])
def put_policy() -> Response:
    return _json(rest.put_policy(app.current_request))


@app.route("/admin/webhook-secret", methods=["PUT"])
def put_webhook_secret() -> Response:
    return _json(rest.put_webhook_secret(app.current_request))


@app.route("/me/settings", methods=["GET"])
def get_settings() -> Response:
    return _json(rest.get_settings(app.current_request))


@app.route("/me/settings", methods=["PUT"])
def put_settings() -> Response:
    return _json(rest.put_settings(app.current_request))


@app.route("/agents/{agentId}/workitems", methods=["GET"])
def agent_workitems(agentId: str) -> Response:
    return _json(rest.list_agent_workitems(app.current_request, agentId))


@app.route("/workitems/{workitemId}/timeline", methods=["GET"])
def timeline(workitemId: str) -> Response:
    return _json(rest.get_timeline(app.current_request, workitemId))


@app.route("/workitems/{workitemId}/export", methods=["GET"])
def export(workitemId: str) -> Response:
    return _json(rest.export_workitem(app.current_request, workitemId))


@app.route("/analytics/coaching", methods=["GET"])
def coaching_analytics() -> Response:
    return _json_or_csv(rest.get_coaching_analytics(app.current_request))


@app.route("/webhooks/events", methods=["POST"])
def webhook_events() -> Response:
    return _json(rest.receive_webhook(app.current_request))


# --- outbound webhooks and channel delivery (docs/webhooks.md) -------------------------------------


@app.route("/admin/webhook-subscriptions", methods=["GET"])
def list_webhook_subscriptions() -> Response:
    return _json(rest.list_webhook_subscriptions(app.current_request))


@app.route("/admin/webhook-subscriptions/{subscriptionId}", methods=["PUT"])
def put_webhook_subscription(subscriptionId: str) -> Response:
    return _json(rest.put_webhook_subscription(app.current_request, subscriptionId))


@app.route("/admin/webhook-subscriptions/{subscriptionId}", methods=["DELETE"])
def delete_webhook_subscription(subscriptionId: str) -> Response:
    return _json(rest.delete_webhook_subscription(app.current_request, subscriptionId))


@app.route("/admin/webhook-subscriptions/{subscriptionId}/rotate-secret", methods=["POST"])
def rotate_webhook_secret(subscriptionId: str) -> Response:
    return _json(rest.rotate_webhook_secret(app.current_request, subscriptionId))


@app.route("/admin/webhook-deliveries/replay", methods=["POST"])
def replay_webhook_deliveries() -> Response:
    return _json(rest.replay_webhook_deliveries(app.current_request))


@app.route("/admin/sms-settings", methods=["GET"])
def get_sms_settings() -> Response:
    return _json(rest.get_sms_settings(app.current_request))


@app.route("/admin/sms-settings", methods=["PUT"])
def put_sms_settings() -> Response:
    return _json(rest.put_sms_settings(app.current_request))


@app.route("/admin/connectors/amazon-connect", methods=["PUT"])
def put_amazon_connect() -> Response:
    return _json(rest.put_amazon_connect(app.current_request))


# --- CORS preflight: every path answers OPTIONS, for the web console's origin only (docs/deploy.md) -------


def preflight(**path_parameters: str) -> Response:
    request = app.current_request
    assert request is not None
    status, body, headers = rest.preflight(request, list(app.routes[request.context["resourcePath"]]), path_parameters)
    return Response(body=body if body is not None else "", status_code=status, headers=dict(headers))


for _path in list(app.routes):
    app.route(_path, methods=["OPTIONS"], name="preflight")(preflight)
