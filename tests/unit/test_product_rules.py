"""The repository is self-contained: its rules are in docs/product.md and nothing names what is not here.

* No tracked file cites a product or contract document kept outside the repository.
* Every repo-relative file path named in a tracked file exists, and every relative markdown link in
  ``README.md`` and ``docs/*.md`` points at a file that exists.
* Every rule id cited anywhere (``S14``, ``B4``, ``V8``, ``Q3``, ``W4``, ``W4.14``) is defined in
  docs/product.md, which defines each id once and keeps the seed numbering (S1-S20, B1-B9).

Each check is first run on planted text, so it is known to catch what it looks for.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "docs" / "product.md"

# Citations of documents that live outside the repository. Spelled so this file does not match itself.
OUTSIDE = re.compile(r"\bS[P]EC\b|\bCON[T]RACT\b|\b(?i:s[p]ec|con[t]ract)\.md\b|\.\./s[h]ared\b")
# A rule id: S, B, V, Q with one or two digits (ruff's S101-style codes have three), or W<n>[.<m>].
RULE_ID = re.compile(r"(?<![\w.])([SBVQ]\d{1,2}|W\d{1,2}(?:\.\d{1,2})?)(?!\w)")
# Where docs/product.md defines ids: "- **S14** ..." items and "### W4 WebSocket" headings.
DEFINED_ITEM = re.compile(r"^- \*\*([SBVQ]\d+|W\d+\.\d+)\*\*", re.MULTILINE)
DEFINED_AREA = re.compile(r"^#+ (W\d+)\b", re.MULTILINE)
MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
BACKTICKED = re.compile(r"`([^`\s]+)`")
FILE_EXTENSIONS = "py|md|ya?ml|json|toml|txt|sh|cfg|ini|js|html|css"
NOT_TEXT = (".png", ".jpg", ".jpeg", ".gif", ".ico", ".zip", ".gz", ".jar", ".pdf")


def tracked_files() -> list[str]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    return [name for name in done.stdout.split("\0") if name and (ROOT / name).is_file()]


def read_text(name: str) -> str | None:
    if name.endswith(NOT_TEXT):
        return None
    try:
        return (ROOT / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def outside_citations(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]


def cited_ids(text: str) -> set[str]:
    return set(RULE_ID.findall(text))


def defined_ids(product_text: str) -> Counter[str]:
    return Counter(DEFINED_ITEM.findall(product_text) + DEFINED_AREA.findall(product_text))


def path_pattern(files: list[str]) -> re.Pattern[str]:
    """Repo-relative file paths: they start with a tracked top-level directory and end in a file extension."""
    tops = sorted({name.split("/")[0] for name in files if "/" in name})
    alternatives = "|".join(map(re.escape, tops))
    return re.compile(rf"(?<![\w./-])((?:{alternatives})/[\w./-]*\w\.(?:{FILE_EXTENSIONS}))\b")


def missing_paths(text: str, files: list[str]) -> list[str]:
    known = set(files)
    return [path for path in path_pattern(files).findall(text) if path not in known]


def broken_doc_references(doc: Path, text: str, files: list[str]) -> list[str]:
    """Relative markdown links that lead nowhere, and backticked names of files or folders that do not exist."""
    known_dirs = {str(parent) for name in files for parent in Path(name).parents if str(parent) != "."}
    basenames = {Path(name).name for name in files}
    tops = {name.split("/")[0] for name in files}
    broken = []
    for target in MD_LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        if not (doc.parent / target.split("#")[0]).exists():
            broken.append(target)
    for token in BACKTICKED.findall(text):
        bare_file = re.fullmatch(rf"[\w.-]+\.(?:{FILE_EXTENSIONS})", token) is not None  # some file has that name
        folder = re.fullmatch(r"[\w.-]+(?:/[\w.-]+)*/", token) is not None and token.split("/")[0] in tops
        if (bare_file and token not in basenames) or (folder and token.rstrip("/") not in known_dirs):
            broken.append(token)
    return broken


# -- the checks catch what they look for ---------------------------------------------------------------


def test_the_checks_catch_planted_mistakes() -> None:
    files = ["docs/product.md", "chalicelib/entrypoints/ws.py", "README.md"]
    spec, contract = "SP" + "EC", "CONTR" + "ACT"
    assert outside_citations(f"rule ({spec} S14)\nok line\n{contract}.md section 4\nsee ../sha" + "red/x") == [
        f"rule ({spec} S14)",
        f"{contract}.md section 4",
        "see ../sha" + "red/x",
    ]
    assert outside_citations("CONTRACT_ACTIONS = frozenset()  # openapi-spec-validator, contracts") == []
    assert cited_ids("S1-S14, B3; W4.14 and W4.x; Amazon S3; noqa: S101, B904") == {"S1", "S14", "B3", "W4.14", "W4", "S3"}
    assert "S" + "21" not in defined_ids(PRODUCT.read_text(encoding="utf-8"))
    typo = "chalicelib/entrypoints/w" + "x.py"
    assert missing_paths(f"see chalicelib/entrypoints/ws.py and {typo}; /admin/users/x.json", files) == [typo]
    doc = ROOT / "docs" / "example.md"
    text = "[ok](product.md) [gone](nowhere.md#x) [web](https://example.org/a.md) `ws.py` `wx.py` `docs/` `chalicelib/nope/`"
    assert broken_doc_references(doc, text, files) == ["nowhere.md#x", "wx.py", "chalicelib/nope/"]


# -- the repository ----------------------------------------------------------------------------------------


def test_no_tracked_file_cites_a_document_outside_the_repository() -> None:
    found = {name: lines for name in tracked_files() if (text := read_text(name)) and (lines := outside_citations(text))}
    assert not found, f"cite docs/product.md (or another document in the repository) instead: {found}"


def test_product_rules_define_each_id_once_and_keep_the_seed_numbering() -> None:
    defined = defined_ids(PRODUCT.read_text(encoding="utf-8"))
    assert not [rule for rule, count in defined.items() if count > 1]
    for prefix, last in (("S", 20), ("B", 9)):
        assert {rule for rule in defined if re.fullmatch(prefix + r"\d+", rule)} == {f"{prefix}{n}" for n in range(1, last + 1)}
    areas = {rule for rule in defined if re.fullmatch(r"W\d+", rule)}
    # W0-W10, then the areas the wire contract v3 added (numbers 11 to 18), in any order of landing
    assert {f"W{n}" for n in range(0, 11)} <= areas <= {f"W{n}" for n in range(0, 19)}
    assert all(rule.split(".")[0] in areas for rule in defined if rule.startswith("W"))


def test_every_cited_rule_id_is_defined_in_docs_product_md() -> None:
    defined = set(defined_ids(PRODUCT.read_text(encoding="utf-8")))
    undefined = {}
    for name in tracked_files():
        text = read_text(name)
        if text and (unknown := cited_ids(text) - defined):
            undefined[name] = sorted(unknown)
    assert not undefined, f"define these in docs/product.md or cite an existing id: {undefined}"


def test_every_repo_relative_path_named_in_a_tracked_file_exists() -> None:
    files = tracked_files()
    missing = {name: found for name in files if (text := read_text(name)) and (found := missing_paths(text, files))}
    assert not missing, missing


def test_docs_link_and_name_only_what_exists() -> None:
    files = tracked_files()
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = {
        str(doc.relative_to(ROOT)): found
        for doc in docs
        if (found := broken_doc_references(doc, doc.read_text(encoding="utf-8"), files))
    }
    assert not broken, broken
