"""What a user deploys: `make package` output (infra/package.py), checked offline.

One build per test session (shared between xdist workers): a copy of the repository is packaged
for the prod stage with ``chalice package --merge-template infra/merge-template.yaml``, exactly as
``make package`` does, with no AWS credentials. AWS's SAM translator (aws-sam-translator, what
CloudFormation runs for ``Transform: AWS::Serverless-2016-10-31``) expands the result, and cfn-lint
runs once on both templates. The tests then check the template against the code it deploys, so
neither can drift from the other:

* tables, keys and indexes against the PynamoDB models (chalicelib/adapters/dynamo.py);
* environment variables against what chalicelib/settings.py reads;
* IAM against AWS's IAM data (policy_sentry's copy of the Service Authorization Reference) and
  against the boto3 calls the adapters make (read from their source with ``ast``);
* the logical ids of Chalice's output that the merge template patches.

tests/infra/test_emulated_stack.py creates the transformed template in moto and runs the zip.
"""

from __future__ import annotations

import ast
import functools
import graphlib
import importlib.util
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.adapters import dynamo
from tests.infra.build import (
    BYTECODE_TAG,
    MAX_ZIP_BYTES,
    NOT_FROM_TEMPLATE,
    NOT_IN_ZIP,
    REGION,
    ROOT,
    RUNTIME,
    Build,
    _adapter_calls,
    _allowed,
    _as_list,
    _camel,
    _environment,
    _functions,
    _get_att_arn,
    _index_names,
    _merge_template,
    _names_referenced,
    _ref,
    _settings_env_names,
    _table_id,
)

pytestmark = pytest.mark.infra

# ---------------------------------------------------------------------------- packaging, lint


def test_packaging_succeeds_offline_without_aws_credentials(build: Build) -> None:
    assert build.returncode == 0, f"infra/package.py failed:\n{build.output}"
    assert build.template, build.output
    assert build.zip_path is not None and build.zip_path.exists(), build.output


def test_sam_translator_transforms_the_template(transformed: Build) -> None:
    resources = transformed.transformed["Resources"]
    assert not [n for n, r in resources.items() if r["Type"].startswith("AWS::Serverless::")]
    assert "Transform" not in transformed.transformed


def test_cfn_lint_reports_nothing_on_either_template(transformed: Build) -> None:
    """Errors and warnings alike, on the SAM template and on what the transform makes of it (some
    rules, W1101 among them, are skipped under the SAM transform and only see the second)."""
    files = {Path(m.get("Filename", "?")).name for m in transformed.lint}
    assert not transformed.lint, (
        "cfn-lint:\n"
        + "\n".join(
            f"{Path(m.get('Filename', '?')).name}: {m.get('Level')} {m.get('Rule', {}).get('Id', '?')} {m['Message']} "
            f"at {m.get('Location', {}).get('Path')}"
            for m in transformed.lint
        )
        + f"\n(in {sorted(files)})"
    )


def _has_alias_or_anchor(text: str) -> list[str]:
    found = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            found.append(f"alias *{event.anchor}")
        elif getattr(event, "anchor", None):
            found.append(f"anchor &{event.anchor}")
    return found


def test_the_template_has_no_yaml_aliases(packaged: Build) -> None:
    """CloudFormation refuses YAML anchors and aliases (console and CLI alike)."""
    assert packaged.template_text
    assert not _has_alias_or_anchor(packaged.template_text)


def test_shared_mappings_are_written_out_not_aliased() -> None:
    """Chalice's template shares one {'Ref': 'WebsocketAPI'} between resources: PyYAML would alias it."""
    package = _package_module()
    shared = {"Ref": "WebsocketAPI"}
    template = {"Resources": {"A": {"Properties": {"ApiId": shared}}, "B": {"Properties": {"ApiId": shared}}}}
    assert _has_alias_or_anchor(yaml.safe_dump(template)), "the hazard this guards against"
    text = package.dump_template(template)
    assert not _has_alias_or_anchor(text)
    assert yaml.safe_load(text) == template


def _package_module() -> Any:
    spec = importlib.util.spec_from_file_location("infra_package", ROOT / "infra" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_websocket_deployment_id_changes_with_routes_and_authorizer(packaged: Build) -> None:
    """A new logical id makes CloudFormation create a new deployment, so the stage gets the change."""
    deployments = packaged.of_type("AWS::ApiGatewayV2::Deployment")
    assert len(deployments) == 1
    (name,) = deployments
    assert re.fullmatch(r"WebsocketAPIDeployment[0-9a-f]{10}", name), name
    assert packaged.resources["WebsocketAPIStage"]["Properties"]["DeploymentId"] == _ref(name)

    package = _package_module()
    chalice_like = json.loads(json.dumps(packaged.template).replace(name, "WebsocketAPIDeployment"))
    assert package.finish_template(json.loads(json.dumps(chalice_like))) == packaged.template
    for changed_resource, key, value in (
        ("WebsocketConnectRoute", "AuthorizationType", "NONE"),
        ("WebsocketAuthorizer", "IdentitySource", ["route.request.header.token"]),
        ("WebsocketMessageRoute", "RouteKey", "coach.send"),
    ):
        changed = json.loads(json.dumps(chalice_like))
        changed["Resources"][changed_resource]["Properties"][key] = value
        finished = package.finish_template(changed)
        new = [n for n, r in finished["Resources"].items() if r["Type"] == "AWS::ApiGatewayV2::Deployment"]
        assert new != [name], f"changing {changed_resource}.{key} keeps the deployment id"
        assert finished["Resources"]["WebsocketAPIStage"]["Properties"]["DeploymentId"] == _ref(new[0])


def test_merge_template_only_patches_resources_chalice_generates(packaged: Build) -> None:
    # A resource of the merge template without a Type patches one Chalice generates. If Chalice
    # stops generating it (a handler renamed in app.py), the merge leaves a resource with no Type.
    patched = [name for name, r in _merge_template()["Resources"].items() if "Type" not in r]
    assert patched, "expected the merge template to patch Chalice's resources"
    untyped = sorted(name for name, r in packaged.resources.items() if "Type" not in r)
    assert not untyped, (
        f"{untyped} are patched by infra/merge-template.yaml but not generated by Chalice "
        f"(generated: {sorted(packaged.resources)})"
    )


def test_no_dependency_cycles(packaged: Build) -> None:
    """CloudFormation refuses a cycle. SAM copies Globals into every function, so a global variable
    referring to, say, WebsocketAPIStage (which depends on the routes, the integrations, and so on
    the functions) would close one."""
    globals_refs = _names_referenced(packaged.template.get("Globals", {}))
    graph = {}
    for name, resource in packaged.resources.items():
        deps = _names_referenced(resource.get("Properties", {})) | set(_as_list(resource.get("DependsOn", [])))
        if resource.get("Type") == "AWS::Serverless::Function":
            deps |= globals_refs
        graph[name] = {d for d in deps if d in packaged.resources}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"resources depend on each other in a cycle: {exc.args[1]}")


# ---------------------------------------------------------------------------------- tables


@pytest.mark.parametrize("key", sorted(dynamo.TABLE_MODELS))
def test_table_matches_its_pynamodb_model(packaged: Build, key: str) -> None:
    model = dynamo.TABLE_MODELS[key]
    schema: dict[str, Any] = dict(model._get_schema())
    table = packaged.resources.get(_table_id(key))
    assert table is not None and table["Type"] == "AWS::DynamoDB::Table", f"no {_table_id(key)} for {key}"
    props = table["Properties"]

    def keys(items: list[dict[str, str]]) -> dict[str, str]:
        return {k["KeyType"]: k["AttributeName"] for k in items}

    def attributes(items: list[dict[str, str]]) -> dict[str, str]:
        return {a["AttributeName"]: a["AttributeType"] for a in items}

    assert keys(props["KeySchema"]) == keys(schema["key_schema"])
    assert props["KeySchema"][0]["KeyType"] == "HASH"
    assert attributes(props["AttributeDefinitions"]) == attributes(schema["attribute_definitions"])
    for cfn_key, model_key in (
        ("GlobalSecondaryIndexes", "global_secondary_indexes"),
        ("LocalSecondaryIndexes", "local_secondary_indexes"),
    ):
        declared = {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in props.get(cfn_key, [])}
        expected = {i["index_name"]: (keys(i["key_schema"]), i["projection"]["ProjectionType"]) for i in schema[model_key]}
        assert declared == expected, f"{key} {cfn_key}"
    assert props["BillingMode"] == "PAY_PER_REQUEST" == model.Meta.billing_mode
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    ttl = model._ttl_attribute()
    if ttl is not None:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl.attr_name, "Enabled": True}
    assert "TableName" not in props, "let CloudFormation name tables so two stacks can share an account"


def test_every_model_of_a_table_fits_its_declared_indexes() -> None:
    by_table: dict[str, list[type[Any]]] = getattr(dynamo, "_MODELS_BY_TABLE", {})
    for key, models in by_table.items():
        declared = _index_names(dynamo.TABLE_MODELS[key])
        for model in models:
            assert _index_names(model) <= declared, f"{model.__name__} uses an index {key} does not declare"


def test_the_template_declares_no_other_table(packaged: Build) -> None:
    assert set(packaged.of_type("AWS::DynamoDB::Table")) == {_table_id(k) for k in dynamo.TABLE_MODELS}


# ---------------------------------------------------------------------- functions, environment


def test_the_runtime_is_supported_as_long_as_any_python_runtime() -> None:
    """AWS's runtime lifecycle (cfn-lint's copy): no Python runtime is supported longer than ours,
    and Chalice can build for it."""
    import cfnlint
    from chalice.deploy.packager import BaseLambdaDeploymentPackager

    lifecycle = json.loads((Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json").read_text())
    python = {name: dates for name, dates in lifecycle.items() if name.startswith("python3")}
    assert python[RUNTIME]["deprecated"] == max(d["deprecated"] for d in python.values()), python[RUNTIME]
    assert RUNTIME in BaseLambdaDeploymentPackager._RUNTIME_TO_ABI
    assert _package_module().LAMBDA_RUNTIME == RUNTIME


def test_every_function_runs_the_s3_code_on_the_runtime(packaged: Build) -> None:
    functions = _functions(packaged)
    assert {
        "APIHandler",
        "WebsocketConnect",
        "WebsocketMessage",
        "WebsocketDisconnect",
        "WsAuthorizer",
        "SmaHandler",
        "EscalateAssistance",
    } <= set(functions)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == RUNTIME, name
        assert props["CodeUri"] == {"Bucket": _ref("CodeBucket"), "Key": _ref("CodeKey")}, (
            f"{name} must take its code from the CodeBucket/CodeKey parameters (add it to the merge template)"
        )


# Settings only some functions need, and which: the console's origins (CORS) only matter to the REST API,
# and they come from the CloudFront distribution, which the other functions need not wait for.
ONLY_FOR = {"CONSOLE_ORIGINS": {"APIHandler"}}


def test_every_setting_is_wired_into_every_function(packaged: Build) -> None:
    for name in _functions(packaged):
        wanted = {s for s in _settings_env_names() - NOT_FROM_TEMPLATE if name in ONLY_FOR.get(s, {name})}
        env = _environment(packaged, name)
        assert wanted <= set(env), f"{name} lacks {sorted(wanted - set(env))}"
        assert not {s for s, functions in ONLY_FOR.items() if name not in functions} & set(env), name
        assert not NOT_FROM_TEMPLATE & set(env), f"{name} sets {sorted(NOT_FROM_TEMPLATE & set(env))}"
    env = _environment(packaged, "APIHandler")
    for key in dynamo.TABLE_MODELS:
        assert env[f"{key.upper()}_TABLE"] == _ref(_table_id(key))
    assert env["WEBSOCKET_API_ID"] == _ref("WebsocketAPI")
    assert env["JWT_SECRET_PARAM"] == _ref("JwtSecretParameterName")
    assert env["WEBHOOK_SECRET_PARAM"] == _ref("WebhookSecretParameterName")
    assert env["MEDIA_PIPELINE_SINK_ARN"] == env["RECORDINGS_BUCKET_ARN"] == _get_att_arn("RecordingsBucket")


def test_secrets_are_parameter_names_never_values(packaged: Build) -> None:
    text = json.dumps(packaged.template)
    assert "COACHING_JWT_SECRET" not in text and "COACHING_WEBHOOK_SECRET" not in text
    for name in ("JwtSecretParameterName", "WebhookSecretParameterName"):
        parameter = packaged.template["Parameters"][name]
        assert parameter["AllowedPattern"].startswith("^/"), "a name, so the IAM ARN can be built from it"


def test_websocket_stage_setting_matches_the_deployed_stage(packaged: Build) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage = packaged.resources["WebsocketAPIStage"]["Properties"]["StageName"]
    assert config["environment_variables"]["WEBSOCKET_STAGE"] == config["api_gateway_stage"] == stage
    assert _environment(packaged, "WebsocketMessage")["WEBSOCKET_STAGE"] == stage


def test_dev_and_prod_stages_differ_in_logging() -> None:
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    dev, prod = stages["dev"], stages["prod"]
    assert dev["environment_variables"]["LOG_LEVEL"] != prod["environment_variables"]["LOG_LEVEL"]
    assert dev["log_retention_in_days"] < prod["log_retention_in_days"]
    assert (dev["environment_variables"]["COACHING_STAGE"], prod["environment_variables"]["COACHING_STAGE"]) == ("dev", "prod")


def test_every_function_logs_only_to_its_own_log_group(packaged: Build) -> None:
    groups = {}
    for name, group in packaged.of_type("AWS::Logs::LogGroup").items():
        if name in ACCESS_LOG_GROUPS:
            continue  # API Gateway writes these (tests below), no function does
        target = group["Properties"]["LogGroupName"]["Fn::Sub"]
        assert target.startswith("/aws/lambda/${"), name
        groups[target.removeprefix("/aws/lambda/${").removesuffix("}")] = name
    functions = _functions(packaged)
    assert set(groups) == set(functions), "every function needs its log group, and no log group a missing function"
    log_resources = []
    for _, statement in _allowed(packaged):
        if any(a.startswith("logs:") for a in _as_list(statement["Action"])):
            assert set(_as_list(statement["Action"])) <= {"logs:CreateLogStream", "logs:PutLogEvents"}
            log_resources += _as_list(statement["Resource"])
    assert sorted(log_resources, key=str) == sorted((_get_att_arn(g) for g in groups.values()), key=str)


# ------------------------------------------------------------------------------------------ IAM


def test_no_statement_allows_a_wildcard_action(packaged: Build) -> None:
    for owner, statement in _allowed(packaged):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{owner} allows {action}"
        assert "NotAction" not in statement and "NotResource" not in statement, owner


# ------------------------------------------------------------- IAM against AWS's own IAM data
# policy_sentry ships the Service Authorization Reference (actions, the resource types each
# authorizes on, their ARN formats) as data: nothing here is a hand-kept list of actions.

SAMPLE_ACCOUNT = "123456789012"
# Variables of ARN formats whose values may contain "/" (everything else is one path segment).
PATH_VARIABLES = {"LogGroupName", "ApiSpecificResourcePath", "ParameterNameWithoutLeadingSlash", "ObjectName", "LogStreamName"}


def _iam_formats(action: str) -> list[str]:
    """The resource ARN formats ``action`` authorizes on ("*" alone: no resource type)."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    rows = get_action_data(service, name).get(service, [])
    return [row["resource_arn_format"] for row in rows if row["action"].lower() == action.lower()]


def _star_only(action: str) -> bool:
    return set(_iam_formats(action)) == {"*"}


def _arn_of(build: Build, name: str, attribute: str = "Arn") -> str:
    """A sample ARN of a template resource, as AWS would form it."""
    kind = build.resources[name]["Type"]
    base = f"arn:aws:{{}}:{REGION}:{SAMPLE_ACCOUNT}:"
    if kind == "AWS::DynamoDB::Table":
        arn = base.format("dynamodb") + f"table/stack-{name}-ABC"
        return arn + "/stream/2026-12-01T00:00:00.000" if attribute == "StreamArn" else arn
    if kind == "AWS::S3::Bucket":
        return f"arn:aws:s3:::stack-{name.lower()}-abc"
    if kind == "AWS::Logs::LogGroup":
        return base.format("logs") + f"log-group:/aws/lambda/stack-{name}-ABC:*"
    if kind == "AWS::SQS::Queue":
        return base.format("sqs") + f"stack-{name}-ABC"
    raise AssertionError(f"no sample ARN for {name} ({kind})")


def _render(build: Build, value: Any) -> str:
    """A resource of a policy statement as a sample ARN (or pattern, with IAM's * wildcards)."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return _arn_of(build, name, attribute)
    if "Fn::Split" in value:  # each listed instance's ARN + a suffix (the only list the template splits)
        _, joined = value["Fn::Split"]
        suffix = joined["Fn::Sub"][0].removeprefix("${Arns}")
        return _render(build, {"Ref": "ConnectInstanceArns"}) + suffix
    if "Ref" in value:
        parameter = build.template["Parameters"][value["Ref"]]
        if value["Ref"] == "SecretsKmsKeyArn":
            return f"arn:aws:kms:{REGION}:{SAMPLE_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        if value["Ref"] == "ConnectInstanceArns":  # a list of instance ARNs; empty by default
            return f"arn:aws:connect:{REGION}:{SAMPLE_ACCOUNT}:instance/f75946c0-bc38-4252-8174-468f6ac2543d"
        return str(parameter["Default"])
    text = value["Fn::Sub"]
    assert isinstance(text, str), value

    def substitute(match: re.Match[str]) -> str:
        ref = match.group(1)
        pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": SAMPLE_ACCOUNT}
        if ref in pseudo:
            return pseudo[ref]
        if ref.endswith(".Arn"):
            return _arn_of(build, ref.removesuffix(".Arn"))
        if ref in build.template["Parameters"]:
            return str(build.template["Parameters"][ref]["Default"])
        return "a1b2c3d4e5"  # the physical id of a resource (an API id)

    return re.sub(r"\$\{([^}]+)\}", substitute, text)


def _tokens(pattern: str, *, is_format: bool) -> list[str]:
    """A granted resource (``*``, ``?`` wildcards) or an ARN format (``${Variable}``) as tokens:
    one character, ``*`` (any text), ``?`` (one character), ``SEG`` (a variable's value, no ``/``
    or ``:``) or ``PATH`` (a variable's value that may hold ``/``)."""
    tokens: list[str] = []
    for piece in re.split(r"(\$\{[^}]+\})", pattern):
        if is_format and piece.startswith("${"):
            tokens.append("PATH" if piece[2:-1] in PATH_VARIABLES else "SEG")
        else:
            tokens.extend(piece)
    return tokens


def _can_match_the_same_arn(granted: str, arn_format: str) -> bool:
    """Whether some ARN matches both the granted pattern and the resource type's format."""
    a, b = _tokens(granted, is_format=False), _tokens(arn_format, is_format=True)

    @functools.cache
    def step(i: int, j: int, in_var: bool) -> bool:
        if i == len(a):
            return j == len(b) or (in_var and j + 1 == len(b))
        if j == len(b):
            return all(t == "*" for t in a[i:])
        x, y = a[i], b[j]
        if x == "*":  # absorbs nothing more, or one more character (or a whole variable) of the format
            return step(i + 1, j, in_var) or step(i, j + 1, False)
        if y in ("SEG", "PATH"):
            allowed = x == "?" or (x not in "/:" if y == "SEG" else x != ":")
            return allowed and (step(i + 1, j, True) or step(i + 1, j + 1, False))
        return (x == "?" or x == y) and step(i + 1, j + 1, False)

    return step(0, 0, False)


def test_every_action_is_one_aws_knows(packaged: Build) -> None:
    for owner, statement in _allowed(packaged):
        for action in _as_list(statement["Action"]):
            assert _iam_formats(action), f"{owner}: {action} is not an IAM action"


def test_star_resource_exactly_for_actions_without_resource_types(packaged: Build) -> None:
    """An action with no resource type matches only "*" (any other Resource and it is always
    denied); every other action gets a narrower resource."""
    star_only = {a for _, s in _allowed(packaged) for a in _as_list(s["Action"]) if _star_only(a)}
    assert {"chime:CreateMeeting", "chime:CreateMediaCapturePipeline", "dynamodb:ListStreams"} <= star_only
    for owner, statement in _allowed(packaged):
        actions, resources = _as_list(statement["Action"]), _as_list(statement["Resource"])
        if "*" in resources or any(_star_only(a) for a in actions):
            assert resources == ["*"], f"{owner}: {actions} on {resources}"
            assert all(_star_only(a) for a in actions), f"{owner}: {actions} can be narrowed, not '*'"


def test_every_resource_is_of_a_type_its_actions_authorize_on(packaged: Build) -> None:
    for owner, statement in _allowed(packaged):
        for action in _as_list(statement["Action"]):
            formats = [f for f in _iam_formats(action) if f != "*"]
            for resource in _as_list(statement["Resource"]):
                if resource == "*":
                    continue
                arn = _render(packaged, resource)
                assert any(_can_match_the_same_arn(arn, f) for f in formats), (
                    f"{owner}: {action} never applies to {arn} (it authorizes on {formats})"
                )


def test_the_arn_matcher_tells_resource_types_apart() -> None:
    table = "arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}"
    index = table + "/index/${IndexName}"
    stream = "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"
    assert _can_match_the_same_arn("arn:aws:dynamodb:us-east-1:1:table/T", table)
    assert not _can_match_the_same_arn("arn:aws:dynamodb:us-east-1:1:table/T", index)
    assert not _can_match_the_same_arn("arn:aws:dynamodb:us-east-1:1:table/T/index/g", table)
    assert _can_match_the_same_arn("arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:*", stream)
    assert not _can_match_the_same_arn(
        "arn:aws:chime:*:1:meeting/*", "arn:${Partition}:chime:${Region}:${AccountId}:media-pipeline/${Id}"
    )


def test_what_the_recording_pipeline_needs_is_granted(packaged: Build) -> None:
    """CreateMediaCapturePipeline's dependent actions (s3:GetBucketPolicy) on the sink bucket."""
    from policy_sentry.querying.actions import get_action_data

    rows = get_action_data("chime", "CreateMediaCapturePipeline")["chime"]
    dependent = {d for row in rows for d in row.get("dependent_actions") or []}
    assert dependent, "the IAM data names what creating a capture pipeline also needs"
    for action in dependent:
        grants = [s for owner, s in _allowed(packaged) if owner == "DefaultRole" and action in _as_list(s["Action"])]
        assert grants, f"{action} is not granted to the request functions"
        assert [_as_list(s["Resource"]) for s in grants] == [[_get_att_arn("RecordingsBucket")]]


def test_dynamodb_only_on_the_tables_and_their_indexes(packaged: Build) -> None:
    tables = {_table_id(k): _index_names(m) for k, m in dynamo.TABLE_MODELS.items()}
    covered: set[str] = set()
    for owner, statement in _allowed(packaged):
        actions = _as_list(statement["Action"])
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        assert all(a.startswith("dynamodb:") for a in actions), f"{owner} mixes DynamoDB with other services"
        for resource in _as_list(statement["Resource"]):
            if "Fn::GetAtt" in resource:
                assert resource["Fn::GetAtt"][0] in tables and resource["Fn::GetAtt"][1] == "Arn", resource
                covered.add(resource["Fn::GetAtt"][0])
            elif resource == "*":
                assert actions == ["dynamodb:ListStreams"], f"{owner}: {actions} on '*'"
            elif resource.get("Fn::Sub", "").endswith("/stream/*"):
                assert resource == {"Fn::Sub": "${WorkitemsTable.Arn}/stream/*"}, f"{owner} reads a stream: {resource}"
                assert set(actions) <= STREAM_READ, "a stream is only read"
            else:
                match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([\w.-]+)", resource.get("Fn::Sub", ""))
                assert match, f"{owner} grants DynamoDB on {resource}"
                table, index = match.groups()
                assert index in tables.get(table, set()), resource
                assert actions == ["dynamodb:Query"], "indexes are only queried"
                covered.add(f"{table}/{index}")
    expected = set(tables) | {f"{t}/{i}" for t, indexes in tables.items() for i in indexes}
    assert covered == expected


ACCESS_LOG_GROUPS = {"RestApiAccessLogGroup", "WebsocketAccessLogGroup"}
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}


def test_dynamodb_actions_are_the_item_level_ones(packaged: Build) -> None:
    actions = {a for _, s in _allowed(packaged) for a in _as_list(s["Action"]) if a.startswith("dynamodb:")}
    actions -= STREAM_READ  # scoped to the workitems stream (checked above)
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
    }, "never Scan, never table administration"


def test_manage_connections_only_on_this_apis_connections(packaged: Build) -> None:
    used = {
        {"post_to_connection": "POST", "delete_connection": "DELETE", "get_connection": "GET"}[m]
        for m in _adapter_calls("chalicelib/adapters/push.py", r"\.(post_to_connection|delete_connection|get_connection)\(")
    }
    granted = set()
    for owner, statement in _allowed(packaged):
        if "execute-api:ManageConnections" not in _as_list(statement["Action"]):
            continue
        assert _as_list(statement["Action"]) == ["execute-api:ManageConnections"], owner
        for resource in _as_list(statement["Resource"]):
            match = re.fullmatch(
                r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                r"\$\{WebsocketAPI\}/\*/(POST|DELETE|GET)/@connections/\*",
                resource["Fn::Sub"],
            )
            assert match, f"{owner}: {resource}"
            granted.add(match.group(1))
    assert granted == used


def test_chime_actions_are_exactly_the_ones_the_voice_adapter_calls(packaged: Build) -> None:
    calls = _adapter_calls("chalicelib/adapters/chime.py", r"_(?:meetings|pipelines)_client\(\)\.(\w+)\(")
    assert calls, "no Chime SDK call found in chalicelib/adapters/chime.py"
    granted = {a for _, s in _allowed(packaged) for a in _as_list(s["Action"]) if a.startswith("chime:")}
    called = {f"chime:{_camel(c)}" for c in calls}
    from policy_sentry.querying.actions import get_action_data

    # And the Chime actions a call depends on (IAM data): CreateMediaInsightsPipeline tags its pipeline.
    dependent = {
        d
        for a in called
        for row in get_action_data("chime", a.split(":")[1]).get("chime", [])
        for d in row.get("dependent_actions") or []
    }
    assert granted == called | {d for d in dependent if d.startswith("chime:")}


def test_secret_parameters_are_the_only_ssm_access(packaged: Build) -> None:
    for owner, statement in _allowed(packaged):
        if any(a.startswith("ssm:") for a in _as_list(statement["Action"])):
            assert _as_list(statement["Action"]) == ["ssm:GetParameter"], owner
            for resource in _as_list(statement["Resource"]):
                assert re.fullmatch(
                    r"arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                    r"parameter\$\{(Jwt|Webhook)SecretParameterName\}",
                    resource["Fn::Sub"],
                ), resource


def test_the_authorizer_can_read_the_jwt_secret_and_nothing_else(packaged: Build) -> None:
    role = packaged.resources["WsAuthorizer"]["Properties"]["Role"]
    assert role == _get_att_arn("AuthorizerRole")
    actions = {a for owner, s in _allowed(packaged) if owner == "AuthorizerRole" for a in _as_list(s["Action"])}
    assert actions == {"ssm:GetParameter", "kms:Decrypt"}


# ------------------------------------------------------------------- API Gateway, Chime, S3


def test_websocket_connect_requires_the_token_authorizer(packaged: Build) -> None:
    route = packaged.resources["WebsocketConnectRoute"]["Properties"]
    assert route["RouteKey"] == "$connect"
    assert route["AuthorizationType"] == "CUSTOM"
    assert route["AuthorizerId"] == _ref("WebsocketAuthorizer")
    authorizer = packaged.resources["WebsocketAuthorizer"]["Properties"]
    assert authorizer["ApiId"] == _ref("WebsocketAPI")
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
    assert "${WsAuthorizer.Arn}" in authorizer["AuthorizerUri"]["Fn::Sub"]
    for other in ("WebsocketMessageRoute", "WebsocketDisconnectRoute"):
        assert "AuthorizerId" not in packaged.resources[other]["Properties"], "only $connect takes an authorizer"


def test_api_gateway_and_chime_may_invoke_their_functions(packaged: Build) -> None:
    permissions = packaged.of_type("AWS::Lambda::Permission")
    authorizer = permissions["WsAuthorizerInvokePermission"]["Properties"]
    assert authorizer["FunctionName"] == _ref("WsAuthorizer")
    assert authorizer["Principal"] == "apigateway.amazonaws.com"
    assert "${WebsocketAPI}/authorizers/${WebsocketAuthorizer}" in authorizer["SourceArn"]["Fn::Sub"]
    sma = permissions["SmaHandlerChimeInvokePermission"]["Properties"]
    assert sma["FunctionName"] == _get_att_arn("SmaHandler")
    assert sma["Principal"] == "voiceconnector.chime.amazonaws.com"
    assert sma["SourceAccount"] == _ref("AWS::AccountId")


def test_only_end_user_messaging_of_this_account_publishes_inbound_texts_and_only_the_topic_invokes(packaged: Build) -> None:
    resources = packaged.resources
    assert resources["InboundSmsTopic"]["Type"] == "AWS::SNS::Topic"
    assert "FifoTopic" not in resources["InboundSmsTopic"]["Properties"]  # two-way SMS needs a standard topic
    policy = resources["InboundSmsTopicPolicy"]["Properties"]
    assert policy["Topics"] == [_ref("InboundSmsTopic")]
    (allow,) = policy["PolicyDocument"]["Statement"]
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "sms-voice.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == _ref("InboundSmsTopic")
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}}
    subscription = resources["InboundSmsSubscription"]["Properties"]
    assert subscription == {"TopicArn": _ref("InboundSmsTopic"), "Protocol": "lambda", "Endpoint": _get_att_arn("SmsInbound")}
    # The topic is the only caller: no other topic, account or API reaches the function.
    invokers = {
        n: p["Properties"]
        for n, p in packaged.of_type("AWS::Lambda::Permission").items()
        if json.dumps(p["Properties"]["FunctionName"]).count("SmsInbound")
    }
    assert list(invokers.values()) == [
        {
            "FunctionName": _get_att_arn("SmsInbound"),
            "Action": "lambda:InvokeFunction",
            "Principal": "sns.amazonaws.com",
            "SourceArn": _ref("InboundSmsTopic"),
        }
    ]
    function = resources["SmsInbound"]["Properties"]
    assert function["Handler"] == "app.sms_inbound" and not function.get("Events")
    assert function["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": _get_att_arn("ConnectorFailureQueue")}
    assert _environment(packaged, "SmsInbound")["SMS_INBOUND_TOPIC_ARN"] == _ref("InboundSmsTopic")
    assert packaged.template["Outputs"]["InboundSmsTopicArn"]["Value"] == _ref("InboundSmsTopic")
    # What the connectors may touch: the claims, the workitems and their keys, the active-SMS index,
    # the webhook and connector queues, pushes; nothing that reads secrets, texts or calls.
    granted = _granted(packaged, "ConnectorRole")
    assert not {a for a in granted if a.split(":")[0] in ("ssm", "kms", "chime", "s3", "sms-voice")}
    # Of Amazon Connect, only starting a chat's streaming and reading a contact, on the listed instances.
    assert {a for a in granted if a.startswith("connect:")} == {"connect:StartContactStreaming", "connect:DescribeContact"}
    assert _resources_of(packaged, "ConnectorRole", "connect:StartContactStreaming") == [_ref("ConnectInstanceArns")]
    (contacts,) = _resources_of(packaged, "ConnectorRole", "connect:DescribeContact")
    assert _render(packaged, contacts) == _render(packaged, _ref("ConnectInstanceArns")) + "/contact/*"
    assert _resources_of(packaged, "ConnectorRole", "dynamodb:Query") == [{"Fn::Sub": "${WorkitemsTable.Arn}/index/gsi2"}]


def test_only_contact_events_of_the_listed_instances_of_this_account_reach_connect_events(packaged: Build) -> None:
    resources = packaged.resources
    parameter = packaged.template["Parameters"]["ConnectInstanceArns"]
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == ""
    rule = resources["ConnectEventsRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.connect"],
        "detail-type": ["Amazon Connect Contact Event"],
        "account": [_ref("AWS::AccountId")],
        "resources": _ref("ConnectInstanceArns"),
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == _get_att_arn("ConnectEvents")
    invokers = [
        p["Properties"]
        for p in packaged.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == _get_att_arn("ConnectEvents")
    ]
    assert sorted(invokers, key=json.dumps) == sorted(
        [
            {
                "FunctionName": _get_att_arn("ConnectEvents"),
                "Action": "lambda:InvokeFunction",
                "Principal": "events.amazonaws.com",
                "SourceArn": _get_att_arn("ConnectEventsRule"),
            },
            {
                "FunctionName": _get_att_arn("ConnectEvents"),
                "Action": "lambda:InvokeFunction",
                "Principal": "sns.amazonaws.com",
                "SourceArn": _ref("ConnectChatTopic"),
            },
        ],
        key=json.dumps,
    )
    # The chats: only Amazon Connect acting for the listed instances of this account publishes to the
    # topic (no policy at all, so nobody but the account's own principals, when no instance is listed).
    topic = packaged.resources["ConnectChatTopicPolicy"]
    assert topic["Condition"] == "HasConnectInstances"
    (statement,) = topic["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "connect.amazonaws.com"} and statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")},
        "ArnEquals": {"aws:SourceArn": _ref("ConnectInstanceArns")},
    }
    subscription = packaged.resources["ConnectChatSubscription"]["Properties"]
    assert subscription == {"TopicArn": _ref("ConnectChatTopic"), "Protocol": "lambda", "Endpoint": _get_att_arn("ConnectEvents")}
    function = resources["ConnectEvents"]["Properties"]
    assert function["Handler"] == "app.connect_events" and not function.get("Events")
    assert function["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": _get_att_arn("ConnectorFailureQueue")}
    env = _environment(packaged, "ConnectEvents")
    assert env["CONNECT_INSTANCE_ARNS"] == {"Fn::Join": [",", _ref("ConnectInstanceArns")]}
    assert env["COACHING_ACCOUNT_ID"] == _ref("AWS::AccountId") and env["CONNECTOR_QUEUE_URL"] == _ref("ConnectorQueue")
    assert env["CONNECT_CHAT_TOPIC_ARN"] == _ref("ConnectChatTopic")
    mapping = resources["ConnectorEventSource"]["Properties"]
    assert mapping["EventSourceArn"] == _get_att_arn("ConnectorQueue") and mapping["FunctionName"] == _ref("ConnectEvents")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_recordings_bucket_is_private_encrypted_and_expires(packaged: Build) -> None:
    props = packaged.resources["RecordingsBucket"]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(
        props["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == _ref("RecordingRetentionDays")


def test_only_chime_media_pipelines_of_this_account_write_recordings(packaged: Build) -> None:
    policy = packaged.resources["RecordingsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == _ref("RecordingsBucket")
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "mediapipelines.chime.amazonaws.com"}
    assert set(_as_list(allow["Action"])) == {"s3:PutObject", "s3:PutObjectAcl"}
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == _ref("AWS::AccountId")
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::Sub": "arn:${AWS::Partition}:chime:*:${AWS::AccountId}:*"}


def test_outputs_tell_the_user_where_things_are(packaged: Build) -> None:
    outputs = packaged.template["Outputs"]
    assert outputs["WebsocketUrl"]["Value"]["Fn::Sub"].startswith("wss://${WebsocketAPI}.execute-api.")
    assert outputs["RestApiUrl"]["Value"]["Fn::Sub"].startswith("https://${RestAPI}.execute-api.")
    for key in dynamo.TABLE_MODELS:
        assert outputs[f"{_table_id(key)}Name"]["Value"] == _ref(_table_id(key))
    assert outputs["RecordingsBucketName"]["Value"] == _ref("RecordingsBucket")


# ------------------------------------------------------------------------------------- the zip


def test_zip_stays_small(packaged: Build) -> None:
    assert packaged.zip_path is not None
    size = packaged.zip_path.stat().st_size
    assert size <= MAX_ZIP_BYTES, f"deployment.zip is {size / 1024 / 1024:.1f} MB"


CHALICE_RUNTIME = (
    "chalice/app.py",
    "chalice/__init__.py",
    f"chalice/__pycache__/app.{BYTECODE_TAG}.pyc",
    f"chalice/__pycache__/__init__.{BYTECODE_TAG}.pyc",
)


def test_zip_holds_the_app_and_its_runtime_dependencies_only(zip_names: list[str]) -> None:
    assert "app.py" in zip_names
    assert any(n.startswith("chalicelib/") for n in zip_names)
    for top in ("pynamodb", "jwt", "msgspec"):
        assert any(n.startswith(f"{top}/") for n in zip_names), f"{top} is missing"
    unwanted = []
    for name in zip_names:
        top = name.split("/", 1)[0]
        dist = (top.split("-", 1)[0] if top.endswith((".dist-info", ".data")) else top).removesuffix(".py").lower()
        chalice_cli = top == "chalice" and name not in CHALICE_RUNTIME
        stale_bytecode = "__pycache__" in name and not name.endswith(f".{BYTECODE_TAG}.pyc")
        if dist in NOT_IN_ZIP or stale_bytecode or chalice_cli:
            unwanted.append(name)
    assert not unwanted, f"the zip holds {len(unwanted)} files that are not the app: {unwanted[:10]}"


def test_zip_holds_no_local_or_test_only_code(packaged: Build, zip_names: list[str]) -> None:
    """Fakes, token minting and webhook signing live in devstack/ and tests/, never in the Lambda zip."""
    local = [n for n in zip_names if n.split("/", 1)[0] in ("devstack", "tests", "scripts", "bench")]
    fakes = [n for n in zip_names if n.startswith("chalicelib/") and "fake" in n.rsplit("/", 1)[-1].lower()]
    assert not local and not fakes, (local + fakes)[:10]
    assert packaged.zip_path is not None
    with zipfile.ZipFile(packaged.zip_path) as zf:
        tokens = zf.read("chalicelib/adapters/tokens.py").decode()
        webhooks = zf.read("chalicelib/services/webhooks.py").decode()
        bootstrap = zf.read("chalicelib/bootstrap.py").decode()
    assert "def mint(" not in tokens  # issuing tokens is the identity provider's job (devstack/tokens.py locally)
    assert "def sign(" not in webhooks  # signing inbound webhooks is the routing engine's (devstack/tokens.py locally)
    assert "fake" not in bootstrap.lower()


def test_zip_carries_bytecode_for_every_module(zip_names: list[str]) -> None:
    """Lambda cannot write __pycache__, so the zip brings modules compiled by the runtime's Python."""
    names = set(zip_names)
    for module in ("app.py", "chalicelib/entrypoints/ws.py", "chalicelib/entrypoints/rest.py", "msgspec/__init__.py"):
        folder, _, file = module.rpartition("/")
        pyc = f"{folder + '/' if folder else ''}__pycache__/{file[:-3]}.{BYTECODE_TAG}.pyc"
        assert pyc in names, f"{pyc} is missing"


# The Lambda Python runtimes from python3.12 on run on Amazon Linux 2023: glibc 2.34.
LAMBDA_GLIBC = (2, 34)


def test_zip_has_lambda_compatible_native_code(packaged: Build, zip_names: list[str]) -> None:
    native = [n for n in zip_names if n.endswith(".so")]
    assert native, "msgspec ships a compiled extension (msgspec/_core)"
    assert packaged.zip_path is not None
    with zipfile.ZipFile(packaged.zip_path) as zf:
        wheel_tags = {
            n.split("/")[0].split("-")[0].lower(): re.findall(r"^Tag: (\S+)$", zf.read(n).decode(), re.M)
            for n in zip_names
            if n.endswith(".dist-info/WHEEL")
        }
    for name in native:
        if name.endswith(".abi3.so"):
            # CPython's stable ABI (cryptography's Rust bindings): loads on any CPython from the
            # wheel's minimum on; the wheel's tags must still be x86_64 Linux within Lambda's glibc.
            tags = wheel_tags.get(name.split("/")[0].lower(), [])
            assert tags, f"{name}: no wheel metadata for its distribution"
            for tag in tags:
                python, abi, platform = tag.split("-")
                assert abi == "abi3" and int(python.removeprefix("cp3")) <= int(RUNTIME.removeprefix("python3.")), tag
                match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
                assert match and (int(match[1]), int(match[2])) <= LAMBDA_GLIBC, f"{name}: {tag} will not load on Lambda"
            continue
        assert f"{BYTECODE_TAG}-x86_64-linux-gnu" in name, f"{name} will not load on Lambda {RUNTIME} x86_64"


def test_fanout_reads_the_workitems_stream_in_order_and_only_noted_changes(packaged: Build) -> None:
    resources = packaged.template["Resources"]
    table = resources["WorkitemsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert dynamo.WorkitemsTable.Meta.stream_view_type == "NEW_AND_OLD_IMAGES"  # the local stack's tables too
    mapping = resources["FanoutStreamMapping"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["WorkitemsTable", "StreamArn"]}
    assert props["FunctionName"] == {"Ref": "Fanout"}
    assert props["MaximumBatchingWindowInSeconds"] == 0  # push as soon as a change is read
    pattern = json.loads(props["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern == {"dynamodb": {"Keys": {"sk": {"S": ["W"]}}, "NewImage": {"fo": {"S": [{"exists": True}]}}}}
    assert dynamo.WorkitemItem.fanout.attr_name == "fo"
    fanout = resources["Fanout"]["Properties"]
    assert fanout["Handler"] == "app.fanout" and fanout["Role"] == {"Fn::GetAtt": ["FanoutRole", "Arn"]}


# ------------------------------------------------------------- boto3 calls the code makes (ast)

# AWS authorizes every operation of the @connections API (post, get, delete a connection) as one
# IAM action; every other service's operations are authorized under their own names.
IAM_ACTION_FOR_EVERY_OPERATION = {"execute-api": "ManageConnections"}
# SQS authorizes its batch operations as the single-message action.
IAM_ACTION_OF_OPERATION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# Granted for AWS services acting on the functions' behalf, not for a call in the code: Lambda
# reading the workitems stream for FanoutStreamMapping (the actions of AWS's managed policy
# AWSLambdaDynamoDBExecutionRole), Lambda reading the delivery queue for DeliverWebhooks (it also
# receives and deletes, which the code calls itself), SSM decrypting with a customer managed key, and
# Lambda sending a function's X-Ray segments (TracingPolicy, with EnableTracing).
# The live transcript's sink stream, read by TranscriptRecords' event source mapping, and what the
# media pipelines service does with TranscriptAccessRole (transcribe the pool's streams, write the sink).
KINESIS_READ = {
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
}
MEDIA_PIPELINES_SERVICE = {
    "transcribe:StartCallAnalyticsStreamTranscription",
    "kinesisvideo:GetMedia",
    "kinesis:PutRecord",
    "kms:GenerateDataKey",
}
GRANTED_FOR_AWS_SERVICES = (
    STREAM_READ
    | KINESIS_READ
    | MEDIA_PIPELINES_SERVICE
    | {"kms:Decrypt"}
    | {"sqs:GetQueueAttributes"}
    | {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
)


def _client_calls() -> dict[str, set[str]]:
    """IAM actions of the boto3/botocore client calls in chalicelib, by module.

    A client's service is the literal given where a module creates one (``boto3.client("ssm")``,
    ``self._client("chime-sdk-meetings")``); DynamoDB's client comes from PynamoDB's connection.
    A call is ``<something named *client*>.<operation>(...)`` with an operation of one of those
    services, found in the parsed source (ast), so comments and strings never count.
    """
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        tree = ast.parse(path.read_text())
        services = {"dynamodb"}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and str(getattr(node.func, "attr", None) or getattr(node.func, "id", "")).endswith("client")
                and node.args[0].value in session.get_available_services()
            ):
                services.add(node.args[0].value)
        operations: dict[str, str] = {}
        for service in services:
            model = session.get_service_model(service)
            prefix = model.signing_name
            for operation in model.operation_names:
                action = f"{prefix}:{IAM_ACTION_FOR_EVERY_OPERATION.get(prefix, operation)}"
                operations[xform_name(operation)] = IAM_ACTION_OF_OPERATION.get(action, action)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in operations
                and "client" in ast.unparse(node.func.value).lower()
            ):
                found.setdefault(str(path.relative_to(ROOT)), set()).add(operations[node.func.attr])
    return found


def test_the_call_finder_sees_the_adapters_calls() -> None:
    calls = _client_calls()
    assert "chime:CreateMediaCapturePipeline" in calls["chalicelib/adapters/chime.py"]
    assert calls["chalicelib/adapters/secrets.py"] == {"ssm:GetParameter"}
    assert calls["chalicelib/adapters/push.py"] == {"execute-api:ManageConnections"}


def test_every_call_the_code_makes_is_granted_and_nothing_else(packaged: Build) -> None:
    called = {action for actions in _client_calls().values() for action in actions}
    granted = {a for _, s in _allowed(packaged) for a in _as_list(s["Action"]) if not a.startswith("logs:")}
    from policy_sentry.querying.actions import get_action_data

    dependent = set()
    for action in called:
        service, name = action.split(":")
        for row in get_action_data(service, name).get(service, []):
            dependent |= set(row.get("dependent_actions") or [])
    assert called <= granted, f"called but never granted: {sorted(called - granted)}"
    # DynamoDB is also called through PynamoDB's models (checked against the tables above).
    extra = {a for a in granted - called - dependent - GRANTED_FOR_AWS_SERVICES if not a.startswith("dynamodb:")}
    assert not extra, f"granted but never called: {sorted(extra)}"
    assert dependent <= granted, f"needed by a call (IAM data) but not granted: {sorted(dependent - granted)}"


# -------------------------------------------------- logging, throttling, versioning (checkov's)


def test_rest_stage_is_throttled_and_access_logged(transformed: Build) -> None:
    stages = {n: r for n, r in transformed.transformed["Resources"].items() if r["Type"] == "AWS::ApiGateway::Stage"}
    assert len(stages) == 1
    props = next(iter(stages.values()))["Properties"]
    assert props["AccessLogSetting"]["DestinationArn"] == _get_att_arn("RestApiAccessLogGroup")
    assert "$context.requestId" in props["AccessLogSetting"]["Format"]
    (setting,) = props["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] == _ref("RestThrottlingRateLimit")
    assert setting["ThrottlingBurstLimit"] == _ref("RestThrottlingBurstLimit")


def test_websocket_stage_is_throttled_and_access_logged(transformed: Build) -> None:
    props = transformed.transformed["Resources"]["WebsocketAPIStage"]["Properties"]
    assert props["AccessLogSettings"]["DestinationArn"] == _get_att_arn("WebsocketAccessLogGroup")
    assert "$context.connectionId" in props["AccessLogSettings"]["Format"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == _ref("WebsocketThrottlingRateLimit")


def test_access_logs_are_kept_a_bounded_time_and_never_hold_a_token(packaged: Build) -> None:
    for name in ACCESS_LOG_GROUPS:
        assert packaged.resources[name]["Properties"]["RetentionInDays"] == _ref("AccessLogRetentionDays")
    formats = json.dumps(
        [
            packaged.resources["WebsocketAPIStage"]["Properties"]["AccessLogSettings"]["Format"],
            packaged.resources["RestAPI"]["Properties"]["AccessLogSetting"]["Format"],
        ]
    )
    for leaky in ("querystring", "header", "body", "authorization"):
        assert leaky not in formats.lower()


def test_stages_wait_for_the_api_gateway_logs_role_when_the_stack_sets_it(packaged: Build) -> None:
    """Stages with access logs fail to create while the account has no CloudWatch role for API Gateway."""
    account = packaged.resources["ApiGatewayAccount"]
    assert account["Condition"] == "SetLogsRole" and account["DeletionPolicy"] == "Retain"
    for name in ("WebsocketAPIStage", "RestAPI"):
        description = packaged.resources[name]["Properties"]["Description"]["Fn::If"]
        assert description[0] == "SetLogsRole" and "${ApiGatewayAccount}" in description[1]["Fn::Sub"]


def test_recordings_bucket_is_versioned_and_old_versions_expire(packaged: Build) -> None:
    props = packaged.resources["RecordingsBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": _ref("RecordingRetentionDays")}


def test_webhook_deliveries_retry_for_a_day_then_rest_in_the_dead_letter_queue(packaged: Build) -> None:
    from chalicelib.domain.webhooks import attempts_for

    resources = packaged.resources
    queue = resources["WebhookDeliveryQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]},
        "maxReceiveCount": attempts_for(24),
    }
    function = resources["DeliverWebhooks"]["Properties"]
    assert queue["VisibilityTimeout"] >= function["Timeout"]
    assert queue["MessageRetentionPeriod"] > 2 * 24 * 3600  # the last attempt is about 27 h after the first
    assert queue["SqsManagedSseEnabled"] and resources["WebhookDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"]
    assert function["Handler"] == "app.deliver_webhooks"
    assert function["Role"] == {"Fn::GetAtt": ["DeliveryRole", "Arn"]}
    source = function["Events"]["DeliverWebhooksSqsEventSource"]["Properties"]
    assert source["Queue"] == {
        "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${WebhookDeliveryQueue.QueueName}"
    }
    assert source["BatchSize"] == 1  # one message per invocation: a post that hangs holds up no other
    # A backoff is a partial batch response, not a function error (it would count as one in Errors).
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    env = _environment(packaged, "Fanout")
    assert env["DELIVERY_QUEUE_URL"] == _ref("WebhookDeliveryQueue") and env["WEBHOOK_TARGETS"] == "public"
    assert env["SMS_QUEUE_URL"] == _ref("SmsQueue") and 1 <= int(env["WEBHOOK_SLOW_LANE"]) < 20


def test_sms_have_a_queue_and_an_event_source_of_their_own(packaged: Build) -> None:
    resources = packaged.resources
    queue = resources["SmsQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] and queue["VisibilityTimeout"] >= resources["DeliverWebhooks"]["Properties"]["Timeout"]
    # Received again only when the send never reached the provider; then the shared dead letters.
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": _get_att_arn("WebhookDeadLetterQueue"), "maxReceiveCount": 3}
    mapping = resources["SmsEventSource"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    props = mapping["Properties"]
    assert props["EventSourceArn"] == _get_att_arn("SmsQueue") and props["FunctionName"] == _ref("DeliverWebhooks")
    assert props["BatchSize"] == 1 and props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"]["MaximumConcurrency"] >= 2


def test_fanout_failures_go_to_a_destination_and_records_are_handed_back_one_by_one(packaged: Build) -> None:
    resources = packaged.resources
    props = resources["FanoutStreamMapping"]["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": _get_att_arn("FanoutFailureQueue")}}
    failures = resources["FanoutFailureQueue"]["Properties"]
    assert failures["SqsManagedSseEnabled"] and failures["MessageRetentionPeriod"] == 14 * 24 * 3600
    # Lambda sends the failure record with the function's role.
    fanout_sends = {
        json.dumps(r, sort_keys=True)
        for owner, statement in _allowed(packaged)
        if owner == "FanoutRole" and "sqs:SendMessage" in _as_list(statement["Action"])
        for r in _as_list(statement["Resource"])
    }
    assert json.dumps(_get_att_arn("FanoutFailureQueue"), sort_keys=True) in fanout_sends


# -------------------------------------------------------------------- one role per kind of function

# What each function's role may do beyond DynamoDB and posting to connections, by the code paths that
# reach it: Chime only from voice actions (WebsocketMessage) and SIP media events (SmaHandler); the
# webhook secret and the dead letters only from REST; closing connections from a frame (an ended
# session) and REST (a revoked user); no secret where no token is verified.
ROLE_OF = {
    "APIHandler": "RestRole",
    "WebsocketMessage": "DefaultRole",
    "WebsocketConnect": "ConnectionRole",
    "WebsocketDisconnect": "ConnectionRole",
    "EscalateAssistance": "EscalationRole",
    "SmaHandler": "VoiceCallRole",
    "WsAuthorizer": "AuthorizerRole",
    "Fanout": "FanoutRole",
    "DeliverWebhooks": "DeliveryRole",
    "SmsInbound": "ConnectorRole",
    "ConnectEvents": "ConnectorRole",
    "MediaPipelineEvents": "VoiceCallRole",
    "TranscriptRecords": "TranscriptRole",
}


def _granted(build: Build, role: str) -> set[str]:
    return {a for owner, s in _allowed(build) if owner == role for a in _as_list(s["Action"])}


def _resources_of(build: Build, role: str, action: str) -> list[Any]:
    statements = [s for owner, s in _allowed(build) if owner == role and action in _as_list(s["Action"])]
    return [r for s in statements for r in _as_list(s["Resource"])]


def test_each_function_has_the_role_of_its_kind(packaged: Build) -> None:
    for function, role in ROLE_OF.items():
        assert packaged.resources[function]["Properties"]["Role"] == _get_att_arn(role), function
    assert set(ROLE_OF) == set(_functions(packaged)), "a new function needs a role of its own here"


def test_only_voice_reaches_chime_and_only_rest_the_dead_letters_and_the_webhook_secret(packaged: Build) -> None:
    for role in set(ROLE_OF.values()):
        granted = _granted(packaged, role)
        assert bool({a for a in granted if a.startswith("chime:")}) == (role in ("DefaultRole", "VoiceCallRole")), role
        # The dead letters (REST's replay), the delivery queues, the connector queue's end checks.
        assert ("sqs:ReceiveMessage" in granted) == (role in ("RestRole", "DeliveryRole", "ConnectorRole")), role
        deletes = [r for r in _resources_of(packaged, role, "execute-api:ManageConnections") if "/DELETE/" in json.dumps(r)]
        assert bool(deletes) == (role in ("RestRole", "DefaultRole")), role
        secrets = json.dumps(_resources_of(packaged, role, "ssm:GetParameter"))
        assert ("WebhookSecretParameterName" in secrets) == (role == "RestRole"), role
        assert ("JwtSecretParameterName" in secrets) == (role in ("RestRole", "DefaultRole", "ConnectionRole", "AuthorizerRole"))
    assert not {a for a in _granted(packaged, "EscalationRole") if a.split(":")[0] in ("ssm", "kms", "chime", "s3")}
