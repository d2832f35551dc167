"""infra/transcription.yaml, the live transcript's own stack (docs/transcript.md): clean for cfn-lint in
the Regions with Chime SDK call analytics, refused by it elsewhere (why it is not in the main template),
and its IAM and retention as the Chime SDK guide and PCI ask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.build import load_template

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "transcription.yaml"
CALL_ANALYTICS_REGIONS = ["us-east-1", "us-west-2", "eu-central-1"]


def _template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _lint(*regions: str) -> list[dict[str, Any]]:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run(
        [str(cfn_lint), "--format", "json", "--regions", *regions, "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(done.stdout or "[]")


def test_cfn_lint_reports_nothing_in_the_call_analytics_regions() -> None:
    assert _lint(*CALL_ANALYTICS_REGIONS) == []


def test_elsewhere_the_chime_types_do_not_exist_so_the_main_template_cannot_hold_them() -> None:
    found = {(m["Rule"]["Id"], m["Location"]["Path"][1]) for m in _lint("eu-west-1")}
    assert found == {("E3006", "TranscriptPool"), ("E3006", "TranscriptConfiguration")}


def test_the_access_role_is_trusted_by_media_pipelines_of_this_account_only() -> None:
    role = _template()["Resources"]["TranscriptAccessRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "mediapipelines.chime.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:chime:*:${AWS::AccountId}:*"}}
    actions = {
        a
        for s in role["Policies"][0]["PolicyDocument"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {
        "transcribe:StartCallAnalyticsStreamTranscription",
        "kinesisvideo:GetDataEndpoint",
        "kinesisvideo:GetMedia",
        "kinesis:PutRecord",
        "kms:GenerateDataKey",
    }


def test_audio_is_kept_one_hour_and_the_sink_is_encrypted_with_a_key_chime_may_use() -> None:
    resources = _template()["Resources"]
    assert resources["TranscriptPool"]["Properties"]["StreamConfiguration"]["DataRetentionInHours"] == 1
    assert resources["TranscriptSinkStream"]["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS"
    assert {"Key": "AWSServiceName", "Value": "ChimeSDK"} in resources["TranscriptKey"]["Properties"]["Tags"]


def test_its_outputs_are_the_main_stacks_transcript_parameters() -> None:
    main = load_template(ROOT / "infra" / "merge-template.yaml")
    wanted = {p for p in main["Parameters"] if p.startswith("Transcript")}
    assert set(_template()["Outputs"]) == wanted
