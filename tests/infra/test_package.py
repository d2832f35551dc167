"""What a user deploys: `make package` output (infra/package.py), checked offline.

One build per test session (shared between xdist workers): a copy of the repository is packaged
for the prod stage with ``chalice package --merge-template infra/merge-template.yaml``, exactly as
``make package`` does, with no AWS credentials; cfn-lint runs once on the result. The tests then
check the template against the code it deploys, so neither can drift from the other:

* tables, keys and indexes against the PynamoDB models (chalicelib/adapters/dynamo.py);
* environment variables against what chalicelib/settings.py reads;
* IAM actions against the Chime and @connections calls the adapters make;
* the logical ids of Chalice's output that the merge template patches.
"""

from __future__ import annotations

import contextlib
import graphlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import fcntl
except ImportError:  # not POSIX: each xdist worker then builds its own copy
    fcntl = None  # type: ignore[assignment]

from chalicelib import settings as settings_module
from chalicelib.adapters import dynamo

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
MAX_ZIP_BYTES = 15 * 1024 * 1024
RUNTIME = "python3.11"

# cfn-lint checks resource types and properties per Region; these are commercial Regions where the
# product can run (Chime SDK meetings, API Gateway WebSockets, DynamoDB PITR).
LINT_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
                "eu-central-1", "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
                "ap-south-1", "sa-east-1"]

# Copied into the scratch project: everything but VCS, tool installs, caches and build output, so
# the "nothing but the app in the zip" checks mean something.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", ".ddblocal", "node_modules", "dist", "deployments",
                                     "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                                     ".import_linter_cache", ".test-reports", "*.pyc")

# Settings read from the environment that a deployed stack must not set: local-stack endpoints and
# literal secrets (in AWS only parameter *names* are configured), and what Lambda itself provides.
NOT_FROM_TEMPLATE = {"DYNAMODB_ENDPOINT", "WEBSOCKET_ENDPOINT", "COACHING_JWT_SECRET", "COACHING_WEBHOOK_SECRET",
                     "AWS_REGION", "AWS_DEFAULT_REGION"}

# Actions that AWS authorizes on no narrower resource than "*" (Service Authorization Reference:
# CreateMeeting has no resource type; the meeting does not exist yet).
STAR_RESOURCE_ONLY = {"chime:CreateMeeting"}

# Zip entries (first path component) that are never part of the Lambda: project directories
# outside the app, and development-only distributions (requirements-dev.txt).
NOT_IN_ZIP = {"tests", "devstack", "infra", "bench", "docs", "scripts", "seeds", ".chalice", "dist", "moto",
              "pytest", "_pytest", "pluggy", "hypothesis", "mypy", "ruff", "cfnlint", "websockets", "aiohttp",
              "importlinter", "boto3", "botocore", "s3transfer", "flask", "werkzeug", "mypy_boto3_dynamodb",
              "boto3_stubs", "botocore_stubs", "yaml", "xdist", "pydantic", "pydantic_core"}


# ------------------------------------------------------------------------------------ the build


@dataclass
class Build:
    returncode: int
    output: str
    template: dict[str, Any] = field(default_factory=dict)
    zip_path: Path | None = None
    lint: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template.get("Resources", {})
        return resources

    def of_type(self, cfn_type: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == cfn_type}


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One xdist worker builds while the others wait, then reuse its result."""
    if fcntl is None:
        yield
        return
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent / f"infra-package-{run_id}" if run_id else base / "infra-package"
    shared.mkdir(parents=True, exist_ok=True)
    return shared


def _build(shared: Path) -> None:
    project, out = shared / "project", shared / "project" / "dist"
    shutil.copytree(ROOT, project, ignore=COPY_IGNORE, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run([sys.executable, "infra/package.py", "--stage", "prod", "--out", str(out)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    result: dict[str, Any] = {"returncode": proc.returncode, "output": proc.stdout + proc.stderr}
    template = out / "sam.yaml"
    if template.exists():
        cfn_lint = Path(sys.executable).with_name("cfn-lint")
        lint = subprocess.run([str(cfn_lint) if cfn_lint.exists() else "cfn-lint", "--format", "json",
                               "--regions", *LINT_REGIONS, "--", str(template)],
                              capture_output=True, text=True, timeout=300, check=False)
        try:
            result["lint"] = json.loads(lint.stdout or "[]")
        except json.JSONDecodeError:
            result["lint"] = [{"Level": "Error", "Message": f"cfn-lint did not run: {lint.stdout}{lint.stderr}"}]
    (shared / "result.json").write_text(json.dumps(result))


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    shared = _shared_dir(tmp_path_factory)
    with _exclusive(shared / ".lock"):
        if not (shared / "result.json").exists():
            _build(shared)
    result = json.loads((shared / "result.json").read_text())
    out = shared / "project" / "dist"
    built = Build(returncode=result["returncode"], output=result["output"], lint=result.get("lint", []))
    if (out / "sam.yaml").exists():
        built.template = yaml.safe_load((out / "sam.yaml").read_text())
    if (out / "deployment.zip").exists():
        built.zip_path = out / "deployment.zip"
    return built


@pytest.fixture(scope="session")
def packaged(build: Build) -> Build:
    """The build, for tests that need its output: fails them with the packaging log otherwise."""
    if not build.template or build.zip_path is None:
        pytest.fail(f"make package produced no template/zip (exit {build.returncode}):\n{build.output}")
    return build


@pytest.fixture(scope="session")
def zip_names(packaged: Build) -> list[str]:
    assert packaged.zip_path is not None
    with zipfile.ZipFile(packaged.zip_path) as zf:
        return zf.namelist()


# -------------------------------------------------------------------------- template helpers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _get_att_arn(name: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, "Arn"]}


def _statements(build: Build) -> list[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement of the template, both branches of any Fn::If."""
    found: list[tuple[str, dict[str, Any]]] = []

    def add(owner: str, document: dict[str, Any]) -> None:
        for statement in _as_list(document.get("Statement", [])):
            branches = statement["Fn::If"][1:] if isinstance(statement, dict) and "Fn::If" in statement else [statement]
            found.extend((owner, b) for b in branches if isinstance(b, dict) and "Effect" in b)

    for name, resource in build.resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                add(name, policy["PolicyDocument"])
        elif resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            add(name, props["PolicyDocument"])
        elif resource.get("Type") == "AWS::Serverless::Function":
            for policy in _as_list(props.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    add(name, policy)
    return found


def _allowed(build: Build) -> list[tuple[str, dict[str, Any]]]:
    return [(owner, s) for owner, s in _statements(build) if s["Effect"] == "Allow"]


def _table_id(key: str) -> str:
    return f"{key.capitalize()}Table"  # "directory" -> "DirectoryTable"


def _index_names(model: type[Any]) -> set[str]:
    schema: dict[str, Any] = dict(model._get_schema())
    return {i["index_name"] for i in schema["global_secondary_indexes"] + schema["local_secondary_indexes"]}


def _functions(build: Build) -> dict[str, Any]:
    return build.of_type("AWS::Serverless::Function")


def _environment(build: Build, function: str) -> dict[str, Any]:
    """A function's environment as SAM builds it: Globals, then the function's own variables."""
    env = dict(build.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    env.update(_functions(build)[function]["Properties"].get("Environment", {}).get("Variables", {}))
    return env


def _names_referenced(node: Any) -> set[str]:
    """Logical ids a template fragment depends on (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                names.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text))
                if isinstance(value, list):
                    names |= _names_referenced(value[1])
            else:
                names |= _names_referenced(value)
    elif isinstance(node, list):
        for item in node:
            names |= _names_referenced(item)
    return names


def _settings_env_names() -> set[str]:
    """Every environment variable chalicelib.settings.load() reads."""
    seen: set[str] = set()

    class Recorder(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.add(key)
            return default

    settings_module.load(Recorder())
    return seen


def _adapter_calls(path: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (ROOT / path).read_text()))


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _merge_template() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            return {key: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {key: loader.construct_sequence(node, deep=True)}
        return {key: loader.construct_mapping(node, deep=True)}

    Loader.add_multi_constructor("!", intrinsic)
    loaded: dict[str, Any] = yaml.load((ROOT / "infra" / "merge-template.yaml").read_text(), Loader=Loader)
    return loaded


# ---------------------------------------------------------------------------- packaging, lint


def test_packaging_succeeds_offline_without_aws_credentials(build: Build) -> None:
    assert build.returncode == 0, f"infra/package.py failed:\n{build.output}"
    assert build.template, build.output
    assert build.zip_path is not None and build.zip_path.exists(), build.output


def test_cfn_lint_reports_no_errors(packaged: Build) -> None:
    errors = [m for m in packaged.lint if m.get("Level") == "Error"]
    for match in packaged.lint:
        if match.get("Level") == "Warning":
            warnings.warn(f"cfn-lint {match['Rule']['Id']}: {match['Message']} "
                          f"({match['Location']['Path']})", stacklevel=1)
    assert not errors, "cfn-lint errors:\n" + "\n".join(
        f"{m.get('Rule', {}).get('Id', '?')} {m['Message']} at {m.get('Location', {}).get('Path')}" for m in errors)


def test_merge_template_only_patches_resources_chalice_generates(packaged: Build) -> None:
    # A resource of the merge template without a Type patches one Chalice generates. If Chalice
    # stops generating it (a handler renamed in app.py), the merge leaves a resource with no Type.
    patched = [name for name, r in _merge_template()["Resources"].items() if "Type" not in r]
    assert patched, "expected the merge template to patch Chalice's resources"
    untyped = sorted(name for name, r in packaged.resources.items() if "Type" not in r)
    assert not untyped, (f"{untyped} are patched by infra/merge-template.yaml but not generated by Chalice "
                         f"(generated: {sorted(packaged.resources)})")


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
    for cfn_key, model_key in (("GlobalSecondaryIndexes", "global_secondary_indexes"),
                               ("LocalSecondaryIndexes", "local_secondary_indexes")):
        declared = {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
                    for i in props.get(cfn_key, [])}
        expected = {i["index_name"]: (keys(i["key_schema"]), i["projection"]["ProjectionType"])
                    for i in schema[model_key]}
        assert declared == expected, f"{key} {cfn_key}"
    assert props["BillingMode"] == "PAY_PER_REQUEST" == model.Meta.billing_mode
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    ttl = model._ttl_attribute()  # type: ignore[no-untyped-call]
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


def test_every_function_runs_the_s3_code_on_python311(packaged: Build) -> None:
    functions = _functions(packaged)
    assert {"APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect", "WsAuthorizer",
            "SmaHandler", "EscalateAssistance"} <= set(functions)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == RUNTIME, name
        assert props["CodeUri"] == {"Bucket": _ref("CodeBucket"), "Key": _ref("CodeKey")}, (
            f"{name} must take its code from the CodeBucket/CodeKey parameters (add it to the merge template)")


def test_every_setting_is_wired_into_every_function(packaged: Build) -> None:
    wanted = _settings_env_names() - NOT_FROM_TEMPLATE
    for name in _functions(packaged):
        env = _environment(packaged, name)
        assert wanted <= set(env), f"{name} lacks {sorted(wanted - set(env))}"
        assert not NOT_FROM_TEMPLATE & set(env), f"{name} sets {sorted(NOT_FROM_TEMPLATE & set(env))}"
    env = _environment(packaged, "APIHandler")
    for key in dynamo.TABLE_MODELS:
        assert env[f"{key.upper()}_TABLE"] == _ref(_table_id(key))
    assert env["WEBSOCKET_API_ID"] == _ref("WebsocketAPI")
    assert env["JWT_SECRET_PARAM"] == _ref("JwtSecretParameterName")
    assert env["WEBHOOK_SECRET_PARAM"] == _ref("WebhookSecretParameterName")
    assert env["MEDIA_PIPELINE_SINK_ARN"] == env["RECORDINGS_BUCKET_ARN"] == _get_att_arn("RecordingsBucket")
    assert env["MEETING_PROVIDER"] == "chime"


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
    assert (dev["environment_variables"]["COACHING_STAGE"], prod["environment_variables"]["COACHING_STAGE"]) == (
        "dev", "prod")


def test_every_function_logs_only_to_its_own_log_group(packaged: Build) -> None:
    groups = {}
    for name, group in packaged.of_type("AWS::Logs::LogGroup").items():
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


def test_star_resource_only_for_actions_aws_cannot_narrow(packaged: Build) -> None:
    for owner, statement in _allowed(packaged):
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= STAR_RESOURCE_ONLY, f"{owner}: {statement}"


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
            elif resource.get("Fn::Sub", "").endswith("/stream/*"):
                assert resource == {"Fn::Sub": "${WorkitemsTable.Arn}/stream/*"}, f"{owner} reads a stream: {resource}"
                assert set(actions) == STREAM_READ, "a stream is only read"
            else:
                match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([\w.-]+)", resource.get("Fn::Sub", ""))
                assert match, f"{owner} grants DynamoDB on {resource}"
                table, index = match.groups()
                assert index in tables.get(table, set()), resource
                assert actions == ["dynamodb:Query"], "indexes are only queried"
                covered.add(f"{table}/{index}")
    expected = set(tables) | {f"{t}/{i}" for t, indexes in tables.items() for i in indexes}
    assert covered == expected


STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}


def test_dynamodb_actions_are_the_item_level_ones(packaged: Build) -> None:
    actions = {a for _, s in _allowed(packaged) for a in _as_list(s["Action"]) if a.startswith("dynamodb:")}
    actions -= STREAM_READ  # scoped to the workitems stream (checked above)
    assert actions == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                       "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                       "dynamodb:ConditionCheckItem"}, "never Scan, never table administration"


def test_manage_connections_only_on_this_apis_connections(packaged: Build) -> None:
    used = {{"post_to_connection": "POST", "delete_connection": "DELETE", "get_connection": "GET"}[m]
            for m in _adapter_calls("chalicelib/adapters/push.py",
                                    r"\.(post_to_connection|delete_connection|get_connection)\(")}
    granted = set()
    for owner, statement in _allowed(packaged):
        if "execute-api:ManageConnections" not in _as_list(statement["Action"]):
            continue
        assert _as_list(statement["Action"]) == ["execute-api:ManageConnections"], owner
        for resource in _as_list(statement["Resource"]):
            match = re.fullmatch(r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                                 r"\$\{WebsocketAPI\}/\*/(POST|DELETE|GET)/@connections/\*", resource["Fn::Sub"])
            assert match, f"{owner}: {resource}"
            granted.add(match.group(1))
    assert granted == used


def test_chime_actions_are_exactly_the_ones_the_voice_adapter_calls(packaged: Build) -> None:
    calls = _adapter_calls("chalicelib/adapters/chime.py", r"_(?:meetings|pipelines)_client\(\)\.(\w+)\(")
    assert calls, "no Chime SDK call found in chalicelib/adapters/chime.py"
    granted = {a for _, s in _allowed(packaged) for a in _as_list(s["Action"]) if a.startswith("chime:")}
    assert granted == {f"chime:{_camel(c)}" for c in calls}


def test_secret_parameters_are_the_only_ssm_access(packaged: Build) -> None:
    for owner, statement in _allowed(packaged):
        if any(a.startswith("ssm:") for a in _as_list(statement["Action"])):
            assert _as_list(statement["Action"]) == ["ssm:GetParameter"], owner
            for resource in _as_list(statement["Resource"]):
                assert re.fullmatch(r"arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                                    r"parameter\$\{(Jwt|Webhook)SecretParameterName\}", resource["Fn::Sub"]), resource


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


def test_recordings_bucket_is_private_encrypted_and_expires(packaged: Build) -> None:
    props = packaged.resources["RecordingsBucket"]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"][k] is True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
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
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:chime:*:${AWS::AccountId}:*"}


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


CHALICE_RUNTIME = ("chalice/app.py", "chalice/__init__.py", "chalice/__pycache__/app.cpython-311.pyc",
                   "chalice/__pycache__/__init__.cpython-311.pyc")


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
        stale_bytecode = "__pycache__" in name and not name.endswith(".cpython-311.pyc")
        if dist in NOT_IN_ZIP or stale_bytecode or chalice_cli:
            unwanted.append(name)
    assert not unwanted, f"the zip holds {len(unwanted)} files that are not the app: {unwanted[:10]}"


def test_zip_carries_bytecode_for_every_module(zip_names: list[str]) -> None:
    """Lambda cannot write __pycache__, so the zip brings compiled modules for Python 3.11."""
    names = set(zip_names)
    for module in ("app.py", "chalicelib/protocol.py", "chalicelib/entrypoints.py", "msgspec/__init__.py"):
        folder, _, file = module.rpartition("/")
        pyc = f"{folder + '/' if folder else ''}__pycache__/{file[:-3]}.cpython-311.pyc"
        assert pyc in names, f"{pyc} is missing"


def test_zip_has_lambda_compatible_native_code(zip_names: list[str]) -> None:
    native = [n for n in zip_names if n.endswith(".so")]
    assert native, "msgspec ships a compiled extension (msgspec/_core)"
    for name in native:
        assert "cpython-311-x86_64-linux-gnu" in name, f"{name} will not load on Lambda {RUNTIME} x86_64"


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
