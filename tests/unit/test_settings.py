"""Settings from the environment: safe defaults, clear errors, and secret values never in a log line."""

from __future__ import annotations

import pytest

from chalicelib.settings import Settings, load

pytestmark = pytest.mark.unit


def test_no_environment_gives_working_defaults() -> None:
    s = load({})
    assert (s.stage, s.region, s.workitems_table, s.escalation_shards) == ("dev", "us-east-1", "coaching-workitems", 4)
    assert s.management_endpoint == ""


def test_the_management_endpoint_comes_from_a_url_or_the_api_id_and_stage() -> None:
    assert load({"WEBSOCKET_ENDPOINT": "http://127.0.0.1:8000/"}).management_endpoint == "http://127.0.0.1:8000"
    deployed = load({"WEBSOCKET_API_ID": "abc123", "WEBSOCKET_STAGE": "api", "AWS_REGION": "eu-west-1"})
    assert deployed.management_endpoint == "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


def test_a_malformed_number_names_the_setting() -> None:
    with pytest.raises(ValueError, match="ESCALATION_SHARDS must be an integer"):
        load({"ESCALATION_SHARDS": "four"})


def test_secret_values_never_appear_in_its_text() -> None:
    s = load(
        {
            "COACHING_JWT_SECRET": "jwt-value-0123456789",
            "COACHING_WEBHOOK_SECRET": "hook-value-0123456789",
            "JWT_SECRET_PARAM": "/coaching/jwt",
        }
    )
    assert s.jwt_secret == "jwt-value-0123456789"
    for text in (repr(s), str(s), f"{s}", repr([s])):
        assert "value-0123456789" not in text
    assert "jwt_secret_param='/coaching/jwt'" in repr(s)  # parameter names are not secret


def test_settings_cannot_be_changed_in_place() -> None:
    with pytest.raises(AttributeError):
        Settings().stage = "prod"  # type: ignore[misc]


def test_settings_is_the_only_module_of_chalicelib_that_reads_the_environment() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "chalicelib"
    readers = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                readers.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert readers and all(r.startswith("chalicelib/settings.py:") for r in readers), readers


def test_the_log_level_comes_from_the_settings() -> None:
    assert load({"LOG_LEVEL": "debug"}).log_level == "debug"
    assert load({}).log_level == "INFO"
