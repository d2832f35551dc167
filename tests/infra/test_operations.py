"""Operating the packaged stack (docs/operations.md): every resource that can fail quietly has an alarm and a
runbook line, every alarm notifies the alarm topic and names its runbook section, one dashboard shows every
alarm and every metric the code writes, and the stack can be created again after a failed first creation.

The coverage test reads the template, not a list: a function, queue, stream mapping, Kinesis stream, SNS
topic or EventBridge rule added later fails it until its alarm and runbook line exist, and the message
says what to add.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib import metrics
from tests.infra.build import ROOT, Build, _as_list, _names_referenced, _ref

pytestmark = pytest.mark.infra

OPERATIONS = ROOT / "docs" / "operations.md"
ALARM = "AWS::CloudWatch::Alarm"
FUNCTIONS = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# SAM function events that become an event source mapping or an EventBridge rule once transformed.
STREAM_EVENTS = ("DynamoDB", "Kinesis", "SQS", "MSK", "MQ")
RULE_EVENTS = ("Schedule", "ScheduleV2", "CloudWatchEvent", "EventBridgeRule")
# Resources that keep data or are shared beyond the stack: never deleted by a stack deletion, but never
# left behind by a failed first creation either (RetainExceptOnCreate).
STATEFUL = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Cognito::UserPool", "AWS::IAM::ServiceLinkedRole")
# Plain Retain on purpose: API Gateway's account-wide logging role and setting (infra/merge-template.yaml says why).
RETAINED_EVEN_ON_A_FAILED_CREATE = {"ApiGatewayLogsRole", "ApiGatewayAccount"}
LONGEST_STACK_NAME = "s" * 128  # CloudFormation's limit


def _text() -> str:
    return OPERATIONS.read_text()


def _alarms(build: Build) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in build.of_type(ALARM).items()}


def _alarm_metrics(props: dict[str, Any]) -> list[dict[str, Any]]:
    """(Namespace, MetricName, Dimensions) of an alarm: its metric, or each metric of its math."""
    if "MetricName" in props:
        return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"], "Dimensions": props.get("Dimensions", [])}]
    return [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]


def _watching(build: Build, name: str, metric_name: str | None = None) -> list[str]:
    """Alarms with a metric (``metric_name``, or any) whose dimensions refer to resource ``name``."""
    found = []
    for alarm, props in _alarms(build).items():
        for metric in _alarm_metrics(props):
            if (metric_name is None or metric["MetricName"] == metric_name) and name in _names_referenced(metric["Dimensions"]):
                found.append(alarm)
    return found


def _sam_events(build: Build, types: tuple[str, ...]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Function events of ``types`` by the logical id SAM gives what it makes of them: (function, event)."""
    found = {}
    for function, resource in build.resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in (resource["Properties"].get("Events") or {}).items():
            if event.get("Type") in types:
                found[function + event_name] = (function, event)
    return found


def _stream_source(node: Any, build: Build | None = None) -> bool:
    """Whether an event source is a stream (DynamoDB or Kinesis), read by shard iterators."""
    text = json.dumps(node)
    named = _names_referenced(node)
    kinesis = build is not None and any(build.resources.get(n, {}).get("Type") == "AWS::Kinesis::Stream" for n in named)
    return "StreamArn" in text or "kinesis" in text.lower() or kinesis


def _what_to_add(kind: str, name: str, example: str) -> str:
    return (
        f"{name} ({kind}) has no alarm or no runbook line. Add to infra/merge-template.yaml an {ALARM} "
        f"on it, {example}, with AlarmActions and OKActions [!Ref AlarmTopic] and an AlarmDescription naming "
        f"its runbook section (docs/operations.md#...); then name `{name}` in that section of docs/operations.md "
        "(what the alarm means, the first three checks, how to recover)."
    )


def _uncovered(build: Build) -> list[str]:
    text = _text()
    problems: list[str] = []

    def need(name: str, kind: str, alarms: list[str], example: str) -> None:
        if not alarms or f"`{name}`" not in text:
            problems.append(_what_to_add(kind, name, example))

    for name, resource in build.resources.items():
        kind = resource.get("Type", "")
        if kind in FUNCTIONS:
            example = (
                f"e.g. {name}ErrorsAlarm: Namespace AWS/Lambda, MetricName Errors, "
                f"Dimensions [{{Name: FunctionName, Value: !Ref {name}}}]"
            )
            need(name, kind, _watching(build, name), example)
        elif kind == "AWS::SQS::Queue":
            example = (
                f"e.g. Namespace AWS/SQS, MetricName ApproximateNumberOfMessagesVisible (or ApproximateAgeOfOldestMessage), "
                f"Dimensions [{{Name: QueueName, Value: !GetAtt {name}.QueueName}}]"
            )
            need(name, kind, _watching(build, name), example)
        elif kind == "AWS::Kinesis::Stream":
            example = (
                "e.g. Namespace AWS/Kinesis, MetricName GetRecords.IteratorAgeMilliseconds, "
                f"Dimensions [{{Name: StreamName, Value: !Ref {name}}}]"
            )
            need(name, kind, _watching(build, name), example)
        elif kind == "AWS::SNS::Topic":
            example = (
                "e.g. Namespace AWS/SNS, MetricName NumberOfNotificationsFailed, "
                f"Dimensions [{{Name: TopicName, Value: !GetAtt {name}.TopicName}}]"
            )
            need(name, kind, _watching(build, name), example)
        elif kind == "AWS::Events::Rule":
            example = (
                f"e.g. Namespace AWS/Events, MetricName FailedInvocations, Dimensions [{{Name: RuleName, Value: !Ref {name}}}]"
            )
            need(name, kind, _watching(build, name), example)
        elif kind == "AWS::Lambda::EventSourceMapping":
            props = resource["Properties"]
            function = next(iter(_names_referenced(props["FunctionName"])), "?")
            if _stream_source(props["EventSourceArn"], build):
                example = (
                    "IteratorAge of its function, e.g. Namespace AWS/Lambda, MetricName IteratorAge, "
                    f"Dimensions [{{Name: FunctionName, Value: !Ref {function}}}]"
                )
                need(name, kind, _watching(build, function, "IteratorAge"), example)
            else:
                queues = _names_referenced(props["EventSourceArn"])
                example = "on its queue (ApproximateAgeOfOldestMessage or ApproximateNumberOfMessagesVisible)"
                need(name, kind, [a for q in queues for a in _watching(build, q)], example)
    for name, (function, event) in _sam_events(build, STREAM_EVENTS).items():
        source = event["Properties"].get("Stream") or event["Properties"].get("Queue")
        if _stream_source(source, build):
            example = f"IteratorAge of {function}"
            need(name, f"{event['Type']} event of {function}", _watching(build, function, "IteratorAge"), example)
        else:
            queues = _names_referenced(source)
            example = "on its queue (ApproximateAgeOfOldestMessage or ApproximateNumberOfMessagesVisible)"
            need(name, f"{event['Type']} event of {function}", [a for q in queues for a in _watching(build, q)], example)
    for name, (function, event) in _sam_events(build, RULE_EVENTS).items():
        example = f"e.g. Namespace AWS/Events, MetricName FailedInvocations, Dimensions [{{Name: RuleName, Value: !Ref {name}}}]"
        need(name, f"{event['Type']} rule of {function}", _watching(build, name), example)
    return problems


# ------------------------------------------------------------------------------ alarm coverage


def test_every_function_queue_mapping_stream_topic_and_rule_has_an_alarm_and_a_runbook_line(packaged: Build) -> None:
    problems = _uncovered(packaged)
    assert not problems, "\n\n".join(problems)


def test_the_coverage_check_names_what_a_new_resource_lacks(packaged: Build) -> None:
    """Planted resources, as later features would add them: each is reported with what to add."""
    planted = json.loads(json.dumps(packaged.template))
    planted["Resources"].update(
        {
            "AttentionTimers": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.timers"}},
            "AttentionQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "TranscriptStream": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 1}},
            "TranscriptMapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"FunctionName": _ref("Fanout"), "EventSourceArn": {"Fn::GetAtt": ["TranscriptStream", "Arn"]}},
            },
            "Insights": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 day)"}},
            "Notices": {"Type": "AWS::SNS::Topic", "Properties": {}},
        }
    )
    build = Build(returncode=0, output="", template=planted)
    problems = "\n".join(_uncovered(build))
    for name, hint in (
        ("AttentionTimers", "MetricName Errors"),
        ("AttentionQueue", "ApproximateNumberOfMessagesVisible"),
        ("TranscriptStream", "IteratorAgeMilliseconds"),
        ("Insights", "FailedInvocations"),
        ("Notices", "NumberOfNotificationsFailed"),
    ):
        assert f"{name} (" in problems and hint in problems, (name, problems)
    # The mapping reads a stream: Fanout's IteratorAge alarm covers it, and it only lacks its runbook line.
    assert "TranscriptMapping (AWS::Lambda::EventSourceMapping)" in problems
    assert "docs/operations.md" in problems and "AlarmActions" in problems


def test_every_function_has_errors_and_throttles_alarms(packaged: Build) -> None:
    for name, resource in packaged.resources.items():
        if resource["Type"] in FUNCTIONS:
            assert _watching(packaged, name, "Errors"), f"{name} has no Errors alarm"
            assert _watching(packaged, name, "Throttles"), f"{name} has no Throttles alarm"


def test_every_stream_consumer_has_an_iterator_age_alarm(packaged: Build) -> None:
    mappings = [r["Properties"] for r in packaged.of_type("AWS::Lambda::EventSourceMapping").values()]
    streams = [m for m in mappings if _stream_source(m["EventSourceArn"])]
    assert streams, "FanoutStreamMapping reads the workitems stream"
    for mapping in streams:
        function = next(iter(_names_referenced(mapping["FunctionName"])))
        [alarm] = _watching(packaged, function, "IteratorAge")
        assert _alarms(packaged)[alarm]["Statistic"] == "Maximum"
    [fanout] = _watching(packaged, "Fanout", "IteratorAge")
    # Records older than the mapping's MaximumRecordAgeInSeconds are dropped: the alarm fires well before.
    age = packaged.resources["FanoutStreamMapping"]["Properties"]["MaximumRecordAgeInSeconds"] * 1000
    assert _alarms(packaged)[fanout]["Threshold"] * 2 <= age


def _dead_letter_queues(build: Build) -> set[str]:
    queues = set()
    for resource in build.resources.values():
        props = resource.get("Properties", {})
        redrive = props.get("RedrivePolicy")
        if redrive:
            queues |= _names_referenced(redrive.get("deadLetterTargetArn"))
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            queues |= _names_referenced(destination)
    return {q for q in queues if build.resources.get(q, {}).get("Type") == "AWS::SQS::Queue"}


def test_every_dead_letter_queue_alarms_on_its_first_message(packaged: Build) -> None:
    dead = _dead_letter_queues(packaged)
    assert "WebhookDeadLetterQueue" in dead
    for queue in dead:
        alarms = _watching(packaged, queue, "ApproximateNumberOfMessagesVisible")
        assert any(
            _alarms(packaged)[a]["Threshold"] == 0 and _alarms(packaged)[a]["ComparisonOperator"] == "GreaterThanThreshold"
            for a in alarms
        ), f"{queue}: no alarm on depth > 0"


def test_the_apis_have_their_error_alarms(packaged: Build) -> None:
    alarms = _alarms(packaged)
    rest = [p for p in alarms.values() if p.get("MetricName") == "5XXError"]
    assert len(rest) == 1
    [api_name, stage] = rest[0]["Dimensions"]
    assert api_name == {"Name": "ApiName", "Value": packaged.resources["RestAPI"]["Properties"]["Name"]}
    assert stage == {"Name": "Stage", "Value": packaged.resources["RestAPI"]["Properties"]["StageName"]}
    for metric in ("IntegrationError", "ExecutionError"):
        assert _watching(packaged, "WebsocketAPI", metric), f"no WebSocket {metric} alarm"


def test_the_operational_metrics_have_their_alarms(packaged: Build) -> None:
    """The failures no AWS metric shows: actions answered with an error frame, the authorizer refusing
    everyone, the escalation sweep, deliveries the queue refused, late events."""
    watched = {
        m["MetricName"] for p in _alarms(packaged).values() for m in _alarm_metrics(p) if m["Namespace"] == metrics.NAMESPACE
    }
    assert watched == {
        "ActionErrors",
        "Connects",
        "EscalationFailures",
        "WebhookEnqueueFailures",
        "CommitToPostDelay",
        "TranscriptFailures",
    }
    delay = next(p for p in _alarms(packaged).values() if p.get("MetricName") == "CommitToPostDelay")
    assert delay["ExtendedStatistic"] == "p99" and delay["Threshold"] == _ref("CommitToPostAlarmMilliseconds")
    # The ordered path's delay (the fast path's is graphed, not alarmed: the ordered path backs it up).
    assert {"Name": "Path", "Value": "stream"} in delay["Dimensions"]
    rate = next(p for p in _alarms(packaged).values() if "Metrics" in p)
    outcomes = {d["Value"] for m in _alarm_metrics(rate) for d in m["Dimensions"] if d["Name"] == "Outcome"}
    assert outcomes == {"accepted", "refused", "failed"}


def test_no_metric_has_a_tenant_or_user_dimension(packaged: Build) -> None:
    for alarm, props in _alarms(packaged).items():
        for metric in _alarm_metrics(props):
            for dimension in metric["Dimensions"]:
                assert not any(w in dimension["Name"].lower() for w in metrics.PER_CUSTOMER), (alarm, dimension)
            if metric["Namespace"] == metrics.NAMESPACE:
                assert {"Name": "Stack", "Value": _ref("AWS::StackName")} in metric["Dimensions"], alarm


# ------------------------------------------------------------------------------ every alarm


def test_every_alarm_notifies_the_alarm_topic_and_names_its_runbook_section(packaged: Build) -> None:
    text = _text()
    anchors = {_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", text, re.M)}
    for name, props in _alarms(packaged).items():
        assert props["AlarmActions"] == [_ref("AlarmTopic")], name
        assert props["OKActions"] == [_ref("AlarmTopic")], name
        assert props.get("TreatMissingData") in ("notBreaching", "breaching", "missing", "ignore"), name
        anchor = re.search(r"docs/operations\.md#([\w-]+)", props["AlarmDescription"])
        assert anchor and anchor.group(1) in anchors, f"{name}: its description names no runbook section of docs/operations.md"
        assert f"`{name}`" in text, f"{name} is not named in docs/operations.md"
        assert len(props["AlarmDescription"]) <= 1024, name


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_alarm_topic_mails_the_address_given(packaged: Build) -> None:
    parameter = packaged.template["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == ""
    subscription = packaged.of_type("AWS::SNS::Subscription")["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": _ref("AlarmTopic"), "Protocol": "email", "Endpoint": _ref("AlarmEmail")}
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("oncall@example.com") and pattern.fullmatch("")
    assert not pattern.fullmatch("not an address") and not pattern.fullmatch("a@b")
    assert packaged.template["Outputs"]["AlarmTopicArn"]["Value"] == _ref("AlarmTopic")


# ------------------------------------------------------------------------------ the dashboard


def _dashboard_body(build: Build) -> dict[str, Any]:
    [dashboard] = build.of_type("AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    made_by_sam = set(_sam_events(build, STREAM_EVENTS + RULE_EVENTS))
    for name in re.findall(r"\$\{([^}]+)\}", text):
        known = {*build.resources, *build.template["Parameters"], *made_by_sam}
        assert name.split(".")[0] in known or name.startswith("AWS::"), name
    resolved = re.sub(r"\$\{CommitToPostAlarmMilliseconds\}", "5000", text)
    resolved = re.sub(r"\$\{[^}]+\}", "x", resolved)
    body: dict[str, Any] = json.loads(resolved)
    return body


def test_one_dashboard_shows_every_alarm(packaged: Build) -> None:
    assert len(packaged.of_type("AWS::CloudWatch::Dashboard")) == 1
    [dashboard] = packaged.of_type("AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    shown = set(re.findall(r"\$\{(\w+)\.Arn\}", text))
    assert shown == set(_alarms(packaged)), f"not on the dashboard: {sorted(set(_alarms(packaged)) - shown)}"
    widgets = _dashboard_body(packaged)["widgets"]
    assert all(w["width"] <= 24 and w["x"] + w["width"] <= 24 for w in widgets)


def test_the_dashboard_graphs_every_metric_the_code_writes_and_no_other(packaged: Build) -> None:
    graphed: set[str] = set()
    for widget in _dashboard_body(packaged)["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):  # a SEARCH expression
                graphed |= set(re.findall(rf"\{{{metrics.NAMESPACE},[^}}]*\}} MetricName=\\?\"(\w+)", row[0]["expression"]))
            elif row[0] == metrics.NAMESPACE:
                graphed.add(row[1])
    assert graphed == set(metrics.CATALOGUE), (
        f"missing {sorted(set(metrics.CATALOGUE) - graphed)}, unknown {sorted(graphed - set(metrics.CATALOGUE))}"
    )


def test_the_dashboard_graphs_the_commit_to_post_delay_of_both_paths(packaged: Build) -> None:
    """Every value of CommitToPostDelay's Path dimension the code writes (fanout.STREAM, fanout.FAST) is
    graphed at p50 and p99: a series without its dimension would show no data."""
    from chalicelib.services.fanout import FAST, STREAM

    assert metrics.COMMIT_TO_POST.dimensions == ("Path",)
    rows = [
        row
        for widget in _dashboard_body(packaged)["widgets"]
        for row in widget.get("properties", {}).get("metrics", [])
        if row[:2] == [metrics.NAMESPACE, "CommitToPostDelay"]
    ]
    graphed = {(row[row.index("Path") + 1], row[-1]["stat"]) for row in rows if "Path" in row}
    assert graphed == {(path, stat) for path in (STREAM, FAST) for stat in ("p50", "p99")} | {(STREAM, "SampleCount")}
    assert all("Path" in row for row in rows)


def test_every_metric_is_in_the_operations_guide() -> None:
    text = _text()
    missing = [name for name in metrics.CATALOGUE if f"| `{name}` |" not in text]
    assert not missing, f"add a row to the metric table of docs/operations.md for {missing}"


# ------------------------------------------------------------------------------ a retry-safe stack


def test_no_stateful_resource_is_retained_when_its_first_creation_fails(packaged: Build) -> None:
    for name, resource in packaged.resources.items():
        policy = resource.get("DeletionPolicy", "Delete")
        if name in RETAINED_EVEN_ON_A_FAILED_CREATE:
            assert policy == "Retain", name
            continue
        assert policy != "Retain", f"{name}: Retain keeps it after a failed first creation, and the retry collides"
        if resource["Type"] in STATEFUL and name not in ("ConnectionsTable", "IdempotencyTable"):
            assert policy == "RetainExceptOnCreate", f"{name} ({resource['Type']}) holds data: RetainExceptOnCreate"
            assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_names_made_from_the_stack_name_fit_their_limits(packaged: Build) -> None:
    """A stack name may have 128 characters; a name property built from it must still fit."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    for name, resource in packaged.resources.items():
        kind = resource["Type"]
        if kind.startswith("AWS::Serverless::"):
            continue
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
        for path, value in _stack_named_values(resource.get("Properties", {})):
            limit = _max_length(schema, path)
            if limit is None:
                continue
            longest = len(value.replace("${AWS::StackName}", LONGEST_STACK_NAME))
            assert longest <= limit, f"{name}.{'.'.join(path)} = {value!r} can be {longest} characters (at most {limit})"


def _stack_named_values(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    found = []
    if isinstance(node, dict):
        sub = node.get("Fn::Sub")
        if isinstance(sub, str) and "${AWS::StackName}" in sub and not re.search(r"\$\{(?!AWS::StackName)", sub):
            return [(path, sub)]
        for key, value in node.items():
            if not key.startswith("Fn::") and key != "Ref":
                found += _stack_named_values(value, (*path, key))
    return found


def _max_length(schema: dict[str, Any], path: tuple[str, ...]) -> int | None:
    node: Any = schema
    for key in path:
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        node = node.get("properties", {}).get(key)
        if node is None:
            return None
    if "maxLength" in node:
        return int(node["maxLength"])
    said = re.search(r"up to (\d+) characters|between \d+ and (\d+) characters", node.get("description", ""))
    return int(said.group(1) or said.group(2)) if said else None


def test_the_origin_access_control_is_named_from_the_stack_id(packaged: Build) -> None:
    config = packaged.resources["ConsoleOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert "AWS::StackName" not in json.dumps(config["Name"])
    assert "AWS::StackId" in json.dumps(config["Name"])
    # "console-" and a stack id's UUID: 44 characters, under the 64 allowed.
    assert len("console-" + "0" * 36) <= 64


def test_dead_letters_outlive_the_delivery_queue(packaged: Build) -> None:
    """SQS counts a dead letter's age from its first enqueue: the dead-letter queue must keep messages
    longer than the delivery queue does, or a letter can expire on arrival."""
    parameter = packaged.template["Parameters"]["WebhookDeadLetterRetentionSeconds"]
    queue = packaged.resources["WebhookDeliveryQueue"]["Properties"]
    assert packaged.resources["WebhookDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == _ref(
        "WebhookDeadLetterRetentionSeconds"
    )
    assert parameter["MinValue"] >= queue["MessageRetentionPeriod"] + 86400


def test_the_service_linked_role_has_no_description_of_ours(packaged: Build) -> None:
    role = packaged.resources["MediaPipelinesServiceLinkedRole"]
    assert set(role["Properties"]) == {"AWSServiceName"}


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [("acme-coaching", True), ("", True), ("my-aws-login", False), ("amazonian", False), ("cognito1", False), ("a--b", False)],
)
def test_the_user_pool_domain_prefix_refuses_reserved_words(packaged: Build, prefix: str, accepted: bool) -> None:
    pattern = packaged.template["Parameters"]["UserPoolDomainPrefix"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, prefix)) is accepted


def test_an_issuer_needs_an_audience(packaged: Build) -> None:
    rule = packaged.template["Rules"]["OidcAudienceWithIssuer"]
    assert {"Fn::Not": [{"Fn::Equals": [_ref("OidcIssuer"), ""]}]} in rule["RuleCondition"]["Fn::And"]
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [_ref("OidcAudience"), ""]}]}


# ------------------------------------------------------------------------------ X-Ray


def test_tracing_is_off_unless_the_stack_turns_it_on(packaged: Build, transformed: Build) -> None:
    assert packaged.template["Parameters"]["EnableTracing"]["Default"] == "false"
    function_globals = packaged.template["Globals"]["Function"]
    assert function_globals["Environment"]["Variables"]["COACHING_TRACING"] == {"Fn::If": ["TracingOn", "active", "off"]}
    assert packaged.resources["RestAPI"]["Properties"]["TracingEnabled"] == {"Fn::If": ["TracingOn", True, False]}
    policy = packaged.resources["TracingPolicy"]
    assert policy["Condition"] == "TracingOn"
    roles = {
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in transformed.transformed["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert {r["Ref"] for r in policy["Properties"]["Roles"]} == roles
    # Set on each function (Chalice writes its own PassThrough on some), resolved by CloudFormation.
    for function in (r for r in transformed.transformed["Resources"].values() if r["Type"] == "AWS::Lambda::Function"):
        assert function["Properties"]["TracingConfig"] == {"Mode": {"Fn::If": ["TracingOn", "Active", "PassThrough"]}}


def test_every_function_knows_its_stack_for_the_metrics(packaged: Build) -> None:
    variables = packaged.template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["COACHING_STACK"] == _ref("AWS::StackName")
    assert all(_as_list(v) for v in variables.values())
