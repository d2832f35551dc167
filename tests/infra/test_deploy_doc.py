"""docs/deploy.md against the repository and the template it describes."""

from __future__ import annotations

import re

import pytest

from tests.infra.build import ROOT, Build

pytestmark = pytest.mark.infra

DOC = ROOT / "docs" / "deploy.md"
BUILT = {
    "dist/sam.yaml",
    "dist/deployment.zip",
    "sam.yaml",
    "deployment.zip",
    "dist/",
    "config.json",
}  # written by `make console` and by `make publish-console`


def _text() -> str:
    return DOC.read_text()


def test_every_file_the_guide_names_is_in_the_repository() -> None:
    named = set(re.findall(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\.(?:md|yaml|yml|py|txt|json|sh))`", _text()))
    named |= set(re.findall(r"`((?:scripts|infra|tests|docs|chalicelib)/[A-Za-z0-9_./-]*)`", _text()))
    missing = sorted(n for n in named - BUILT if not (ROOT / n).exists())
    assert not missing, f"docs/deploy.md names files that are not in the repository: {missing}"


def test_every_make_target_the_guide_names_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", _text()))
    assert used and used <= targets, f"unknown make targets: {sorted(used - targets)}"


def test_every_stack_parameter_is_explained(packaged: Build) -> None:
    text = _text()
    missing = sorted(p for p in packaged.template["Parameters"] if f"`{p}`" not in text)
    assert not missing, f"docs/deploy.md does not explain {missing}"


def test_the_guide_names_the_runtime_the_package_builds_for(packaged: Build) -> None:
    runtimes = {f["Properties"]["Runtime"] for f in packaged.resources.values() if f.get("Type") == "AWS::Serverless::Function"}
    assert len(runtimes) == 1
    assert f"`{runtimes.pop()}`" in _text()


def test_every_output_the_guide_names_exists(packaged: Build) -> None:
    outputs = set(packaged.template["Outputs"])
    named = set(re.findall(r"`(\w+(?:Url|Name|Arn|Endpoint))`", _text()))
    parameters = set(packaged.template["Parameters"])
    unknown = sorted(
        n
        for n in named
        if n.endswith(("Url", "TableName", "BucketName", "Endpoint"))
        and n not in outputs
        and n not in parameters
        and n not in ("EndpointURL",)
    )
    assert not unknown, f"docs/deploy.md names outputs the stack does not have: {unknown}"
