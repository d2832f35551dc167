""".pre-commit-config.yaml runs the checks of ``make lint`` with the tools in .venv: local hooks only
(nothing downloaded), each entry an executable that exists, and none of make lint's Python checks left out."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".pre-commit-config.yaml"


def hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load(CONFIG.read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_every_hook_is_local_and_runs_a_tool_from_the_virtualenv() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    for hook in hooks():
        assert hook["language"] == "system", hook["id"]
        executable = shlex.split(hook["entry"])[0]
        assert executable.startswith(".venv/bin/"), hook["id"]
        path = ROOT / executable
        assert path.is_file() and os.access(path, os.X_OK), f"{hook['id']}: {executable} is missing (make install)"


def _command(words: list[str]) -> str:
    """``ruff check``, ``mypy``: the tool and its subcommand, without options."""
    tool = Path(words[0]).name
    return f"{tool} {words[1]}" if len(words) > 1 and not words[1].startswith("-") else tool


def test_the_hooks_are_the_python_checks_of_make_lint() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    linted = {_command(shlex.split(call.replace("$(VENV)", ".venv"))) for call in re.findall(r"\$\(VENV\)/bin/[^;|&]+", recipe)}
    hooked = {_command(shlex.split(hook["entry"])) for hook in hooks()}
    assert linted == {"ruff check", "ruff format", "mypy", "lint-imports"}, recipe
    assert hooked == linted


def test_pre_commit_accepts_the_configuration() -> None:
    done = subprocess.run(
        [str(ROOT / ".venv/bin/pre-commit"), "validate-config", str(CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
