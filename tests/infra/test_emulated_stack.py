"""The packaged stack, created in moto's CloudFormation, and the packaged zip run against it.

The template AWS's SAM translator made of ``make package``'s output is created as a stack in a moto
server (CloudFormation, IAM, Lambda, DynamoDB, S3, Events, Logs, SSM), from the zip uploaded to
moto's S3 and the two secret parameters created in moto's SSM, as an operator would. moto cannot
create some resource types; exactly those are left out (``LEFT_OUT`` says why) and each becomes a
template parameter of the same name, so what refers to them still resolves.

Then the functions' handlers run from the zip, each in its own clean interpreter of the Lambda
runtime's Python version holding only what that runtime provides (boto3, botocore and their
dependencies) and the unpacked zip, with the environment moto's Lambda holds for that function (the
template's variables, resolved) plus what Lambda sets. Their AWS calls go to the moto server
(``AWS_ENDPOINT_URL``). The WebSocket API is one of the left-out resources, so pushes go to a
recorder standing in for its ``@connections`` endpoint (``WEBSOCKET_ENDPOINT``, the local stack's
override); the URL the functions would use on AWS is checked separately.

The scenario runs once per test session (shared by xdist workers, like the build); the tests read
its record: ``/health``, the ``$connect`` authorizer (a good and a bad token), admin PUTs, a signed
webhook, ``$connect``, ``fanout`` on the stream records the webhook committed, the escalation job,
and ``$disconnect``.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import re
import subprocess
import threading
import time
import traceback
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from devstack.tokens import mint
from tests.infra.build import ROOT, Build, _as_list, _exclusive, _shared_dir, _statements

pytestmark = pytest.mark.infra

STACK = "coaching"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CODE_BUCKET, CODE_KEY = "code-bucket", "supervisor-coaching/abc123/deployment.zip"
JWT_SECRET = "jwt-secret-for-the-emulated-stack-0123456789abcdef"
WEBHOOK_SECRET = "webhook-secret-for-the-emulated-stack-0123456789"

# Resource types of the transformed template that moto's CloudFormation cannot create, and why.
LEFT_OUT = {
    "AWS::ApiGatewayV2::Api": "moto's CloudFormation has no API Gateway v2 (WebSocket) resources",
    "AWS::ApiGatewayV2::Authorizer": "idem",
    "AWS::ApiGatewayV2::Integration": "idem",
    "AWS::ApiGatewayV2::Route": "idem",
    "AWS::ApiGatewayV2::Deployment": "idem",
    "AWS::ApiGatewayV2::Stage": "idem",
    "AWS::ApiGateway::Deployment": "moto creates the REST API but ignores its OpenAPI Body, and refuses to deploy "
    "an API without methods",
    "AWS::ApiGateway::Stage": "not a moto CloudFormation resource type",
    "AWS::ApiGateway::Account": "not a moto CloudFormation resource type",
    "AWS::S3::BucketPolicy": "not a moto CloudFormation resource type",
    "AWS::IAM::ServiceLinkedRole": "not a moto CloudFormation resource type (and off by default)",
    "AWS::CloudFront::Distribution": "not a moto CloudFormation resource type",
    "AWS::CloudFront::OriginAccessControl": "not a moto CloudFormation resource type",
    "AWS::CloudFront::ResponseHeadersPolicy": "not a moto CloudFormation resource type",
    "AWS::CloudWatch::Alarm": "not a moto CloudFormation resource type",
    "AWS::SNS::TopicPolicy": "not a moto CloudFormation resource type",
    "AWS::SNS::Subscription": "not a moto CloudFormation resource type",
    "AWS::Events::Rule": "moto's CloudFormation leaves a list parameter (ConnectInstanceArns) unresolved in an event "
    "pattern and refuses the pattern",
    "AWS::CloudWatch::Dashboard": "its body names the alarms' ARNs, which moto cannot create",
}

# What the Lambda runtime provides besides the standard library (and nothing else is available).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

# Functions the scenario invokes, by logical id.
INVOKED = (
    "APIHandler",
    "WsAuthorizer",
    "WebsocketConnect",
    "Fanout",
    "EscalateAssistance",
    "WebsocketDisconnect",
    "DeliverWebhooks",
)


# ------------------------------------------------------------------------------------ helpers


def _package_module() -> Any:
    spec = importlib.util.spec_from_file_location("infra_package", ROOT / "infra" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Recorder(ThreadingHTTPServer):
    """Stands in for API Gateway's @connections endpoint: records every post."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _RecorderHandler)


class _RecorderHandler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.posts.append(
            {
                "path": self.path,
                "body": body.decode("utf-8", "replace"),
                "signed": "Credential=" in (self.headers.get("Authorization") or ""),
            }
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _rest_event(
    method: str,
    resource: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": raw,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "api",
            "path": f"/api{path}",
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "restapi",
            "identity": {"sourceIp": "203.0.113.9"},
        },
    }


_CONNECTED_AT: dict[str, int] = {}


def _ws_context(connection_id: str, route: str, event_type: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    """A WebSocket event's requestContext; a connection keeps its connectedAt, as on API Gateway."""
    now = int(time.time() * 1000)
    context: dict[str, Any] = {
        "routeKey": route,
        "eventType": event_type,
        "stage": "api",
        "requestTimeEpoch": now,
        "connectedAt": _CONNECTED_AT.setdefault(connection_id, now),
        "requestId": str(uuid.uuid4()),
        "domainName": "wsapi.execute-api.us-east-1.amazonaws.com",
        "connectionId": connection_id,
        "apiId": "wsapi",
        "identity": {"sourceIp": "203.0.113.9"},
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return context


def _signed(body: dict[str, Any]) -> tuple[str, str]:
    raw = json.dumps(body)
    timestamp = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.{raw}".encode(), hashlib.sha256).hexdigest()
    return raw, f"t={timestamp},v1={digest}"


def _holding(dynamodb: Any, created: dict[str, Any], text: str) -> list[str]:
    """Tables (of the stack) with an item that mentions ``text``: a test-only look, so a Scan."""
    found = []
    for logical_id in ("DirectoryTable", "ConnectionsTable"):
        items = dynamodb.scan(TableName=created[logical_id][1])["Items"]
        found += [logical_id for item in items if text in json.dumps(item)]
    return found


# ---------------------------------------------------------------------------------- the stack


def _attributes_as_refs(node: Any, names: set[str]) -> Any:
    """``node`` with every attribute of a left-out resource (``Fn::GetAtt``, ``${Name.Attr}``) read as a
    ``Ref`` to the parameter that stands in for it."""
    if isinstance(node, dict):
        if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] in names:
            return {"Ref": node["Fn::GetAtt"][0]}
        return {k: _attributes_as_refs(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_attributes_as_refs(v, names) for v in node]
    if isinstance(node, str) and "${" in node:
        return re.sub(r"\$\{(\w+)\.\w+\}", lambda m: "${" + m.group(1) + "}" if m.group(1) in names else m.group(0), node)
    return node


def _emulated_template(transformed: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    template = json.loads(json.dumps(transformed))
    left_out = sorted(n for n, r in template["Resources"].items() if r["Type"] in LEFT_OUT)
    for name in left_out:
        del template["Resources"][name]
        # A parameter of the same name: Ref and ${Name} still resolve (to a stand-in id).
        template.setdefault("Parameters", {})[name] = {"Type": "String", "Default": f"emulated{name.lower()}"[:30]}
    template["Resources"] = _attributes_as_refs(template["Resources"], set(left_out))
    template["Outputs"] = {
        k: v for k, v in template.get("Outputs", {}).items() if not any(name in json.dumps(v) for name in left_out)
    }
    return template, left_out


def _run_scenario(build: Build, work: Path) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer

    python = _package_module().runtime_python()
    if python is None:
        return {
            "error": f"no Python interpreter of the Lambda runtime's version ({_package_module().RUNTIME_VERSION}) "
            "runs these tests: make the .venv with it (make install)"
        }
    from moto.awslambda.models import LambdaFunction

    started = time.monotonic()
    # moto's Lambda would run a delivered event in Docker; record it instead (and answer like a
    # successful invocation, so the event source mapping moves on).
    delivered: list[tuple[str, dict[str, Any]]] = []

    def deliver(function: Any, body: str, *args: Any, **kwargs: Any) -> str:
        delivered.append((function.function_name, json.loads(body)))
        return "{}"

    patched = mock.patch.object(LambdaFunction, "invoke", deliver)
    patched.start()
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    recorder = _Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        host, port = moto_server.get_host_and_port()
        endpoint = f"http://{host}:{port}"

        def client(service: Any) -> Any:  # Any: boto3-stubs type each service name as a Literal
            return boto3.client(
                service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
            )

        # -- what an operator does before creating the stack
        assert build.zip_path is not None
        s3 = client("s3")
        s3.create_bucket(Bucket=CODE_BUCKET)
        s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=build.zip_path.read_bytes())
        ssm = client("ssm")
        parameters = build.template["Parameters"]
        for name, value in (
            (parameters["JwtSecretParameterName"]["Default"], JWT_SECRET),
            (parameters["WebhookSecretParameterName"]["Default"], WEBHOOK_SECRET),
        ):
            ssm.put_parameter(Name=name, Value=value, Type="SecureString")

        # -- the stack
        template, left_out = _emulated_template(build.transformed)
        cloudformation = client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            Parameters=[
                {"ParameterKey": "CodeBucket", "ParameterValue": CODE_BUCKET},
                {"ParameterKey": "CodeKey", "ParameterValue": CODE_KEY},
            ],
        )
        stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        # moto lists a resource whose Condition is false (the optional user pool) without a logical id.
        created = {
            r["LogicalResourceId"]: (r["ResourceType"], r.get("PhysicalResourceId", ""), r["ResourceStatus"])
            for r in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
            if "LogicalResourceId" in r
        }
        record: dict[str, Any] = {
            "stack_status": stack["StackStatus"],
            "created": created,
            "left_out": left_out,
            "transformed_count": len(build.transformed["Resources"]),
            "websocket_api_parameter": template["Parameters"]["WebsocketAPI"]["Default"],
        }
        lambda_client = client("lambda")
        functions = {}
        for logical_id in INVOKED:
            config = lambda_client.get_function_configuration(FunctionName=created[logical_id][1])
            functions[logical_id] = config
        record["functions"] = {
            k: {
                "Runtime": v["Runtime"],
                "Handler": v["Handler"],
                "Role": v["Role"],
                "Variables": v.get("Environment", {}).get("Variables", {}),
            }
            for k, v in functions.items()
        }
        record["stored_code_sha256"] = functions["APIHandler"]["CodeSha256"]

        # -- the runtime: the unpacked zip, and the packages the Lambda runtime provides
        task, runtime = work / "task", work / "runtime"
        with zipfile.ZipFile(build.zip_path) as zf:
            zf.extractall(task)
        runtime.mkdir()
        for package in RUNTIME_PACKAGES:
            module = __import__(package)
            source = Path(module.__file__ or "")
            target = source.parent if source.name == "__init__.py" else source
            (runtime / target.name).symlink_to(target)

        def invoke(logical_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
            config = functions[logical_id]
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                "PYTHONPATH": f"{task}{os.pathsep}{runtime}",
                "LAMBDA_TASK_ROOT": str(task),
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"],
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 512)),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{config['Runtime']}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                **{k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()},
                # the emulation: AWS APIs are moto's, @connections is the recorder
                "AWS_ENDPOINT_URL": endpoint,
                "WEBSOCKET_ENDPOINT": f"http://127.0.0.1:{recorder.server_port}/api",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
            request = work / f"{logical_id}-{uuid.uuid4().hex[:6]}.json"
            out = request.with_suffix(".out.json")
            request.write_text(json.dumps({"handler": config["Handler"], "events": events, "out": str(out)}))
            proc = subprocess.run(
                [python, "-S", "-B", str(ROOT / "tests" / "infra" / "lambda_driver.py"), str(request)],
                env=env,
                cwd=task,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if proc.returncode != 0 or not out.exists():
                return {"crash": f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"}
            result: dict[str, Any] = json.loads(out.read_text())
            result["logs"] = (proc.stdout + proc.stderr)[-4000:]
            return result

        admin = mint(JWT_SECRET, sub="admin-1", tid="t1", role="admin")
        agent = mint(JWT_SECRET, sub="agent-1", tid="t1", role="agent")
        assignment, signature = _signed(
            {
                "eventId": "evt-1",
                "tenantId": "t1",
                "type": "workitem.assigned",
                "data": {
                    "workitemId": "W1",
                    "channel": "chat",
                    "agentId": "agent-1",
                    "customer": {"id": "cust-1", "name": "Casey"},
                    "subject": "Refund",
                },
            }
        )
        record["rest"] = invoke(
            "APIHandler",
            [
                _rest_event("GET", "/health", "/health"),
                _rest_event(
                    "PUT",
                    "/admin/users/{userId}",
                    "/admin/users/sup-1",
                    token=admin,
                    path_parameters={"userId": "sup-1"},
                    body={"name": "Sam", "role": "supervisor"},
                ),
                _rest_event(
                    "PUT",
                    "/admin/users/{userId}",
                    "/admin/users/agent-1",
                    token=admin,
                    path_parameters={"userId": "agent-1"},
                    body={"name": "Alex", "role": "agent"},
                ),
                _rest_event(
                    "PUT",
                    "/admin/teams/{teamId}",
                    "/admin/teams/team-1",
                    token=admin,
                    path_parameters={"teamId": "team-1"},
                    body={"name": "Team one", "supervisors": ["sup-1"], "agents": ["agent-1"]},
                ),
                _rest_event(
                    "PUT",
                    "/admin/users/{userId}",
                    "/admin/users/x",
                    token=agent,
                    path_parameters={"userId": "x"},
                    body={"name": "X", "role": "agent"},
                ),
                _rest_event(
                    "POST", "/webhooks/events", "/webhooks/events", body=assignment, headers={"X-Coaching-Signature": signature}
                ),
                # .invalid never resolves (RFC 6761): deliveries to it fail and are retried later.
                _rest_event(
                    "PUT",
                    "/admin/webhook-subscriptions/{subscriptionId}",
                    "/admin/webhook-subscriptions/crm",
                    token=admin,
                    path_parameters={"subscriptionId": "crm"},
                    body={"url": "https://hooks.invalid/in", "events": ["*"], "enabled": True},
                ),
            ],
        )
        connect_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:wsapi/api/$connect"
        record["authorizer"] = invoke(
            "WsAuthorizer",
            [
                {
                    "type": "REQUEST",
                    "methodArn": connect_arn,
                    "queryStringParameters": {"token": agent},
                    "requestContext": _ws_context("conn-agent", "$connect", "CONNECT", None),
                },
                {
                    "type": "REQUEST",
                    "methodArn": connect_arn,
                    "queryStringParameters": {"token": agent[:-4] + "AAAA"},
                    "requestContext": _ws_context("conn-x", "$connect", "CONNECT", None),
                },
            ],
        )
        granted = (record["authorizer"].get("results") or [{}])[0].get("result") or {}
        record["connect"] = invoke(
            "WebsocketConnect",
            [
                {
                    "requestContext": _ws_context("conn-agent", "$connect", "CONNECT", granted.get("context")),
                    "headers": {},
                    "isBase64Encoded": False,
                }
            ],
        )
        record["connection_after_connect"] = _holding(client("dynamodb"), created, "conn-agent")
        message, signature = _signed(
            {
                "eventId": "evt-2",
                "tenantId": "t1",
                "type": "workitem.message",
                "data": {"workitemId": "W1", "from": "customer", "text": "Where is my refund?"},
            }
        )
        record["rest_after_connect"] = invoke(
            "APIHandler",
            [
                _rest_event(
                    "POST", "/webhooks/events", "/webhooks/events", body=message, headers={"X-Coaching-Signature": signature}
                )
            ],
        )

        # -- the workitems stream: moto's event source mapping (FanoutStreamMapping) handed the
        # committed changes to a function; those events, in order, are what Fanout runs on.
        stream_events = [event for name, event in delivered if name == created["Fanout"][1]]
        record["stream_deliveries"] = {name: sum(1 for n, _ in delivered if n == name) for name, _ in delivered}
        record["stream_records"] = sum(len(e.get("Records", [])) for e in stream_events)
        posts_before = len(recorder.posts)
        record["stream_events"] = stream_events
        record["fanout"] = invoke("Fanout", stream_events)
        record["fanout_posts"] = recorder.posts[posts_before:]

        # -- the webhook delivery queue: what Fanout queued, as moto's SQS event source mapping
        # (DeliverWebhooksSqsEventSource) handed it to the function; those events are what it runs on.
        queue_events = [event for name, event in delivered if name == created["DeliverWebhooks"][1]]
        record["queued"] = [json.loads(r["body"]) for event in queue_events for r in event.get("Records", [])]
        record["queued_kinds"] = [[json.loads(r["body"])["k"] for r in event.get("Records", [])] for event in queue_events]
        record["queued_ids"] = [[r["messageId"] for r in event.get("Records", [])] for event in queue_events]
        record["deliver"] = invoke("DeliverWebhooks", queue_events)

        record["escalation"] = invoke(
            "EscalateAssistance",
            [
                {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": ACCOUNT,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "region": REGION,
                    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/escalate"],
                    "detail": {},
                }
            ],
        )
        record["disconnect"] = invoke(
            "WebsocketDisconnect",
            [
                {
                    "requestContext": {
                        **_ws_context("conn-agent", "$disconnect", "DISCONNECT", granted.get("context")),
                        "disconnectStatusCode": 1000,
                        "disconnectReason": "",
                    },
                    "headers": {},
                    "isBase64Encoded": False,
                }
            ],
        )
        record["connection_after_disconnect"] = _holding(client("dynamodb"), created, "conn-agent")
        record["seconds"] = round(time.monotonic() - started, 1)
        return record
    finally:
        recorder.shutdown()
        moto_server.stop()
        patched.stop()


@pytest.fixture(scope="session")
def emulated(transformed: Build, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    shared = _shared_dir(tmp_path_factory) / "emulated"
    shared.mkdir(exist_ok=True)
    with _exclusive(shared / ".lock"):
        result_file = shared / "result.json"
        if not result_file.exists():
            try:
                record = _run_scenario(transformed, shared)
            except Exception as exc:  # reported by every test that needs the record
                record = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"}
            result_file.write_text(json.dumps(record, default=str))
    record = json.loads(result_file.read_text())
    if "error" in record:
        pytest.fail(record["error"])
    return record


def _results(record: dict[str, Any], step: str) -> list[dict[str, Any]]:
    run = record[step]
    assert "crash" not in run, run["crash"]
    assert not run["foreign_modules"], f"{step} loaded modules the Lambda runtime would not have: {run['foreign_modules']}"
    return list(run["results"])


def _ok(result: dict[str, Any]) -> Any:
    assert "error" not in result, result.get("traceback", result.get("error"))
    return result["result"]


# -------------------------------------------------------------------------------------- tests


def test_the_stack_is_created_with_everything_moto_can_create(emulated: dict[str, Any], transformed: Build) -> None:
    assert emulated["stack_status"] == "CREATE_COMPLETE"
    resources = transformed.transformed["Resources"]
    # Off with the default parameters: the service-linked role, the optional Cognito user pool, the alarm
    # e-mail subscription, X-Ray's policy and the live transcript's mapping and rules.
    conditional_off = {
        n
        for n, r in resources.items()
        if r.get("Condition")
        in ("CreatePipelinesRole", "MakeUserPool", "MakeUserPoolDomain", "HasAlarmEmail", "TracingOn", "EnableTranscription")
    }
    expected = {n for n, r in resources.items() if r["Type"] not in LEFT_OUT} - conditional_off
    assert set(emulated["created"]) == expected
    assert all(status == "CREATE_COMPLETE" for _, _, status in emulated["created"].values())
    assert set(emulated["left_out"]) == {n for n, r in resources.items() if r["Type"] in LEFT_OUT}


def test_every_function_runs_the_uploaded_zip_on_the_runtime(emulated: dict[str, Any]) -> None:
    for name, config in emulated["functions"].items():
        assert config["Runtime"] == _package_module().LAMBDA_RUNTIME, name
    for step in ("rest", "rest_after_connect", "authorizer", "connect", "fanout", "escalation", "disconnect", "deliver"):
        run = emulated[step]
        assert "crash" not in run, run["crash"]
        assert run["python"] == _package_module().RUNTIME_VERSION
        assert run["app_bytecode"], "the zip's bytecode for the runtime was not there to load"


def test_health_answers(emulated: dict[str, Any]) -> None:
    response = _ok(_results(emulated, "rest")[0])
    assert response["statusCode"] == 200, response


def test_admin_puts_write_the_directory_and_refuse_a_non_admin(emulated: dict[str, Any]) -> None:
    results = _results(emulated, "rest")
    for result in results[1:4]:
        response = _ok(result)
        assert response["statusCode"] == 200, response
    refused = _ok(results[4])
    assert refused["statusCode"] == 403, refused
    assert json.loads(refused["body"])["error"]["code"]


def test_signed_webhooks_are_applied(emulated: dict[str, Any]) -> None:
    for response in (_ok(_results(emulated, "rest")[5]), _ok(_results(emulated, "rest_after_connect")[0])):
        assert response["statusCode"] == 200, response


def test_the_authorizer_reads_the_secret_from_ssm_and_admits_only_valid_tokens(emulated: dict[str, Any]) -> None:
    good, bad = _results(emulated, "authorizer")
    policy = _ok(good)
    assert policy["principalId"] == "t1/agent-1"
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["context"]["role"] == "agent"
    assert bad.get("error") == "Exception: Unauthorized"
    assert ["ssm", "GetParameter"] in emulated["authorizer"]["calls"]


def test_connect_and_disconnect_record_and_forget_the_connection(emulated: dict[str, Any]) -> None:
    assert _ok(_results(emulated, "connect")[0])["statusCode"] == 200
    assert emulated["connection_after_connect"], "$connect recorded the connection nowhere"
    assert _ok(_results(emulated, "disconnect")[0])["statusCode"] == 200
    assert not emulated["connection_after_disconnect"], emulated["connection_after_disconnect"]


def test_fanout_pushes_the_committed_change_to_the_connected_agent(emulated: dict[str, Any]) -> None:
    assert emulated["stream_records"] > 0, f"the stream mapping delivered nothing to Fanout: {emulated['stream_deliveries']}"
    results = [_ok(r) for r in _results(emulated, "fanout")]
    assert all(r == {"batchItemFailures": []} for r in results)
    posts = emulated["fanout_posts"]
    assert posts and all(p["path"] == "/api/@connections/conn-agent" and p["signed"] for p in posts), posts
    assert any("Where is my refund?" in p["body"] for p in posts), posts


def test_fanout_queues_signed_deliveries_and_the_delivery_function_retries_them(emulated: dict[str, Any]) -> None:
    created = _ok(_results(emulated, "rest")[6])
    assert created["statusCode"] == 201, created
    queued = emulated["queued"]
    assert {(q["k"], q["type"], q.get("sub")) for q in queued} >= {
        ("post", "workitem.assigned", "crm"),
        ("post", "timeline.entry", "crm"),
    }
    results = _results(emulated, "deliver")
    assert len(results) == len(emulated["queued_kinds"])
    for kinds, ids, result in zip(emulated["queued_kinds"], emulated["queued_ids"], results, strict=True):
        if "post" in kinds:  # hooks.invalid does not resolve: the post goes back for its retry (not an error)
            assert _ok(result) == {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}, result
        else:  # presence.changed from $connect, expanded into a post per subscription
            assert _ok(result) == {"batchItemFailures": []}


def test_the_escalation_job_runs(emulated: dict[str, Any]) -> None:
    result = _ok(_results(emulated, "escalation")[0])
    assert isinstance(result, dict)


def test_on_aws_pushes_go_to_the_websocket_apis_own_endpoint(emulated: dict[str, Any]) -> None:
    api_id = emulated["websocket_api_parameter"]
    assert emulated["fanout"]["management_endpoint"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/api"


def _role_actions(packaged: Build) -> dict[str, set[str]]:
    by_role: dict[str, set[str]] = {}
    for owner, statement in _statements(packaged):
        if statement["Effect"] == "Allow":
            by_role.setdefault(owner, set()).update(_as_list(statement["Action"]))
    return by_role


def _iam_actions_for(service: str, operation: str) -> set[str]:
    """The IAM actions that authorize one API call (any one of them suffices for this check)."""
    if service == "execute-api":
        return {"execute-api:ManageConnections"}
    if service == "dynamodb" and operation == "TransactWriteItems":  # authorized item by item
        return {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
    if service == "sqs" and operation.endswith("Batch"):  # authorized as the single-message action
        return {f"sqs:{operation.removesuffix('Batch')}"}
    if service == "dynamodb" and operation == "TransactGetItems":
        return {"dynamodb:GetItem"}
    return {f"{service}:{operation}"}


def test_every_call_a_function_made_is_granted_to_its_role(emulated: dict[str, Any], packaged: Build) -> None:
    roles = _role_actions(packaged)
    functions = packaged.transformed["Resources"]
    for step, logical_id in (
        ("rest", "APIHandler"),
        ("rest_after_connect", "APIHandler"),
        ("authorizer", "WsAuthorizer"),
        ("connect", "WebsocketConnect"),
        ("fanout", "Fanout"),
        ("escalation", "EscalateAssistance"),
        ("deliver", "DeliverWebhooks"),
        ("disconnect", "WebsocketDisconnect"),
    ):
        role = functions[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        calls = {tuple(c) for c in emulated[step]["calls"]}
        assert calls or step == "escalation", f"{logical_id} made no AWS call at all"
        for service, operation in calls:
            assert _iam_actions_for(service, operation) & roles.get(role, set()), (
                f"{logical_id} called {service}:{operation}, which its role {role} is not granted"
            )
