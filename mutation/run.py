"""``make mutate``: mutation testing of the modules that hold the product's promises, with mutmut.

Each group below names the files it mutates, which of their functions (mutmut's mutant-name patterns;
the store adapters: only the functions that write conditionally) and the tests it runs. mutmut first
runs a group's tests once to learn which test executes which function, then runs each mutant in a
process forked from a warm one, against only the tests that executed the mutated function, fastest
first, stopping at the first failure. A group runs in its own directory (mutation/.work/<group>,
git-ignored) because mutmut reads its settings from the working directory and keeps its state there.

Writes mutation/results.json: the score of each file and of the whole run, how long it took and the
machine's load, and every surviving mutant with its diff and, when it is one, the reason it is
equivalent (mutation/equivalent.toml). Exits non-zero when the kill rate is under the target.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutation" / ".work"
RESULTS = ROOT / "mutation" / "results.json"
EQUIVALENT = ROOT / "mutation" / "equivalent.toml"
TARGET = 0.90

# What a test run needs beside the mutated package (linked into each group's directory; mutmut copies them).
PROJECT = ["app.py", ".chalice", "devstack", "tests", "docs", "pyproject.toml"]
# Tests that read the repository rather than run the product (hooks, rule ids, packaging): they cover
# no mutated function and would need the whole repository copied.
NOT_RUN = [
    "tests/unit/test_precommit_config.py",
    "tests/unit/test_product_rules.py",
    "tests/unit/test_import_footprint.py",
    "tests/unit/test_console_events.py",  # reads console/src/protocol.ts
]
# Parametrized tests whose ids pytest cannot select again from the command line (a parameter with spaces
# at its edges or an escaped control character): mutmut hands every test back to pytest by its id.
NOT_SELECTABLE = [
    "tests/unit/test_tokens.py::test_ids_outside_the_safe_alphabet_are_refused",
    "tests/unit/test_validation.py::test_int_fields_take_only_json_integers_within_bounds",
]
SKIP = [*(f"--ignore={p}" for p in NOT_RUN), *(f"--deselect={t}" for t in NOT_SELECTABLE)]

# Each group runs the tests that hold its modules' promises, not the whole fast tier: a surviving mutant
# runs every selected test that reaches its function, and the fan-out or the coaching rules are reached
# by almost every world test (about 15 s a survivor on two loaded cores, not counting the mutants that
# die only late). The lists below are what each group's tests were narrowed to so that `make mutate`
# fits in 20 minutes (docs/mutation.md has the measurements).
DOMAIN = [
    "-m",
    "unit or service",
    "tests/unit",
    # the fast tier's heavy unit tests that check no rule of the domain: tracing, the changelog, the
    # API documents, OIDC key fetching, the stdlib HS256 check, pins and the warnings policy
    *(
        f"--ignore=tests/unit/{name}.py"
        for name in (
            "test_tracing",
            "test_changelog",
            "test_contract_docs",
            "test_oidc_tokens",
            "test_hs256_stdlib",
            "test_compat_pins",
            "test_warnings_policy",
        )
    ),
    # the world tests of the rules' features on the in-memory stores
    *(
        f"tests/integration/{name}.py"
        for name in (
            "test_voice",
            "test_assistance",
            "test_inbound_webhooks",
            "test_coaching_flow",
            "test_live_permissions",
            "test_properties",
        )
    ),
    *SKIP,
]
SERVICES = [
    "-m",
    "unit or service",
    *(
        f"tests/unit/{name}.py"
        for name in (
            "test_fanout",
            "test_delivery",
            "test_webhook_rules",
            "test_inbound_signature",
            "test_fairness_rules",
            "test_metrics",
        )
    ),
    # the world tests of pushes, frames and webhooks on the in-memory stores (the memory tier runs the
    # production fan_out entry point and the webhook poster)
    *(
        f"tests/integration/{name}.py"
        for name in (
            "test_fanout_stream",
            "test_limits",
            "test_outbound_webhooks",
            "test_fair_delivery",
            "test_inbound_webhooks",
            "test_webhook_docs",
            "test_webhook_targets",
            "test_sms_channel",
            "test_coaching_flow",
            "test_push_close",
            "test_robustness",
            "test_properties",
        )
    ),
    *SKIP,
]


@dataclass(frozen=True)
class Group:
    name: str
    files: list[str]  # what mutmut mutates (only_mutate globs)
    mutants: list[str]  # which of their mutants run (mutant-name patterns)
    tests: list[str]  # pytest arguments selecting the tests mutants may run


GROUPS = [
    Group("domain", ["chalicelib/domain/*.py"], ["chalicelib.domain.*"], DOMAIN),
    Group(
        "services",
        ["chalicelib/services/fanout.py", "chalicelib/services/delivery.py", "chalicelib/services/webhooks.py"],
        ["chalicelib.services.fanout.*", "chalicelib.services.delivery.*", "chalicelib.services.webhooks.*"],
        SERVICES,
    ),
    Group(
        "http_target",
        ["chalicelib/adapters/http_target.py"],
        ["chalicelib.adapters.http_target.*"],
        [
            "-m",
            "unit or integration",
            "tests/unit/test_http_target.py",
            "tests/unit/test_webhook_rules.py",
            "tests/integration/test_http_poster.py",
        ],
    ),
    # The store adapters' conditional writes, against the storage contract on moto (the fakes do not run them).
    Group(
        "store_conditions",
        [
            "chalicelib/adapters/workitem_store.py",
            "chalicelib/adapters/assist_repository.py",
            "chalicelib/adapters/webhook_store.py",
            "chalicelib/adapters/directory_store.py",
        ],
        [
            "chalicelib.adapters.workitem_store.*ǁcreate__mutmut_*",
            "chalicelib.adapters.workitem_store.*ǁcommit__mutmut_*",
            "chalicelib.adapters.workitem_store.*ǁmark_event__mutmut_*",
            "chalicelib.adapters.assist_repository.*ǁcreate__mutmut_*",
            "chalicelib.adapters.assist_repository.*ǁclaim__mutmut_*",
            "chalicelib.adapters.assist_repository.*ǁescalate__mutmut_*",
            "chalicelib.adapters.webhook_store.*ǁset_delivery__mutmut_*",
            "chalicelib.adapters.directory_store.*ǁenroll__mutmut_*",
            "chalicelib.adapters.directory_store.*ǁforget__mutmut_*",
        ],
        ["-m", "integration", "tests/integration/test_store_contract.py"],
    ),
]

KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}  # the mutant hung or ran away: counted as killed, as mutmut does
SURVIVED = {0}
NO_TESTS = {5, 33}


def setup_cfg(group: Group) -> str:
    lines = ["[mutmut]", "source_paths = chalicelib", "only_mutate ="]
    lines += [f"    {f}" for f in group.files]
    lines += ["also_copy ="] + [f"    {p}" for p in PROJECT if p != "pyproject.toml"]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {a}" for a in group.tests]
    lines += ["pytest_add_cli_args =", "    -p", "    no:cacheprovider"]
    if os.environ.get("MUTATE_DEBUG"):
        lines += ["debug = true"]
    # Not mutated: logging calls (what happened, for operators) and the wording of an error raised with a
    # literal message (the wire promises its code and a message; the prose is checked where a test names
    # what it must say). The condition that raises, and which error it raises, are mutated as any code.
    lines += ["do_not_mutate_patterns =", r"    \blog\.(debug|info|warning|error|exception)\(", r"""    ^\s*raise \w+\(f?["']"""]
    return "\n".join(lines) + "\n"


def prepare(group: Group) -> Path:
    work = WORK / group.name
    work.mkdir(parents=True, exist_ok=True)
    for name in ["chalicelib", *PROJECT]:
        link = work / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    (work / "setup.cfg").write_text(setup_cfg(group))
    return work


def run_group(group: Group, children: int, fresh: bool) -> dict[str, Any]:
    work = prepare(group)
    if fresh:
        shutil.rmtree(work / "mutants", ignore_errors=True)
    log = WORK / f"{group.name}.log"
    started = time.monotonic()
    mutmut = Path(sys.executable).with_name("mutmut")
    with log.open("w") as out:
        proc = subprocess.run(  # noqa: S603 - this virtualenv's mutmut, with the groups' fixed arguments
            [str(mutmut), "run", "--max-children", str(children), *group.mutants],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
            check=False,
        )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"mutmut failed for group {group.name} (exit {proc.returncode}); see {log}")
    (work / "seconds").write_text(f"{seconds:.1f}\n")
    return {"seconds": round(seconds, 1), "work": work}


def recheck_group(group: Group, children: int) -> dict[str, Any]:
    """Run again only the mutants that survived the group's last run (after tests were added): mutmut
    maps the new tests first. Mutants killed before stay killed, as long as no test was taken away."""
    work = prepare(group)
    survivors = [
        name
        for meta in (work / "mutants").rglob("*.py.meta")
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()
        if code in SURVIVED and any(fnmatch.fnmatch(name, p) for p in group.mutants)
    ]
    if not survivors:
        return last_run(group)
    log = WORK / f"{group.name}.recheck.log"
    mutmut = Path(sys.executable).with_name("mutmut")
    with log.open("w") as out:
        proc = subprocess.run(  # noqa: S603 - this virtualenv's mutmut, with the survivors' names
            [str(mutmut), "run", "--max-children", str(children), *survivors],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"mutmut failed rechecking group {group.name} (exit {proc.returncode}); see {log}")
    return last_run(group)


def last_run(group: Group) -> dict[str, Any]:
    """The group's last run as it stands (``--report``): its time when it finished, else None."""
    work = WORK / group.name
    if not (work / "mutants").exists():
        raise SystemExit(f"group {group.name} has not run yet")
    stamp = work / "seconds"
    return {"seconds": float(stamp.read_text()) if stamp.exists() else None, "work": work}


def collect(group: Group, work: Path) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Per file: counts by outcome; and the survivors with their diffs."""
    sys.path.insert(0, str(work))
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    files: dict[str, dict[str, int]] = {}
    survivors: list[dict[str, Any]] = []
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        path = str(meta.relative_to(work / "mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        selected = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, p) for p in group.mutants)}
        if not selected:
            continue
        counts = {"killed": 0, "survived": 0, "timeout": 0, "no_tests": 0, "other": 0, "not_run": 0}
        for name, code in sorted(selected.items()):
            if code is None:  # the run stopped before this mutant (a report of an unfinished run)
                counts["not_run"] += 1
            elif code in KILLED:
                counts["killed"] += 1
            elif code in TIMEOUT:
                counts["timeout"] += 1
            elif code in SURVIVED or code in NO_TESTS:
                counts["survived" if code in SURVIVED else "no_tests"] += 1
                cwd = os.getcwd()
                os.chdir(work)
                try:
                    diff = get_diff_for_mutant(name, path=path)
                finally:
                    os.chdir(cwd)
                survivors.append(
                    {"mutant": name, "file": path, "outcome": "survived" if code in SURVIVED else "no tests", "diff": diff}
                )
            else:
                counts["other"] += 1
        files[path] = counts
    return files, survivors


OUTCOMES = ("killed", "survived", "timeout", "no_tests", "other")


def score(counts: dict[str, int]) -> float:
    tested = sum(counts[k] for k in OUTCOMES)
    return (counts["killed"] + counts["timeout"]) / tested if tested else 1.0


def load_equivalent() -> dict[str, str]:
    if not EQUIVALENT.exists():
        return {}
    data = tomllib.loads(EQUIVALENT.read_text())
    return {entry["mutant"]: entry["reason"] for entry in data.get("equivalent", [])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="groups to run (default: all): " + ", ".join(g.name for g in GROUPS))
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants run at once")
    parser.add_argument("--keep", action="store_true", help="reuse the last run's mutants and test map (faster, for iterating)")
    parser.add_argument("--report", action="store_true", help="write results.json from the groups' last runs, running nothing")
    parser.add_argument("--recheck", action="store_true", help="run only the last run's survivors again (after adding tests)")
    args = parser.parse_args()
    chosen = [g for g in GROUPS if not args.groups or g.name in args.groups]
    load_before = os.getloadavg()
    started = datetime.now(UTC)
    clock = time.monotonic()
    files: dict[str, dict[str, int]] = {}
    survivors: list[dict[str, Any]] = []
    groups: dict[str, Any] = {}
    equivalent = load_equivalent()
    for group in chosen:
        print(f"== mutmut: {group.name} ({', '.join(group.files)})", flush=True)
        if args.report:
            ran = last_run(group)
        elif args.recheck:
            ran = recheck_group(group, args.children)
        else:
            ran = run_group(group, args.children, fresh=not args.keep)
        group_files, group_survivors = collect(group, ran["work"])
        files.update(group_files)
        survivors += group_survivors
        total = {k: sum(c[k] for c in group_files.values()) for k in (*OUTCOMES, "not_run")}
        groups[group.name] = {"seconds": ran["seconds"], "tests": " ".join(group.tests), **total, "score": round(score(total), 4)}
        print(f"   {sum(total.values())} mutants, score {score(total):.1%}, {ran['seconds']} s", flush=True)
    carried = _carry_over(chosen, groups, files, survivors)
    for s in survivors:
        s["equivalent"] = equivalent.get(s["mutant"])
    total = {k: sum(c[k] for c in files.values()) for k in (*OUTCOMES, "not_run")}
    raw = score(total)
    n_equivalent = sum(1 for s in survivors if s["equivalent"])
    tested = sum(total[k] for k in OUTCOMES)
    adjusted = (total["killed"] + total["timeout"]) / (tested - n_equivalent) if tested > n_equivalent else 1.0
    result = {
        "tool": "mutmut " + _version(),
        "started": started.isoformat(timespec="seconds"),
        "seconds": None if args.report or args.recheck else round(time.monotonic() - clock, 1),
        "report_of_last_runs": args.report or args.recheck,
        "survivors_rechecked": args.recheck,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_before],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "target": TARGET,
        "mutants": tested,
        **total,
        "equivalent": n_equivalent,
        "score": round(raw, 4),
        "score_without_equivalent": round(adjusted, 4),
        "groups": groups,
        "groups_from_an_earlier_run": carried,
        "files": {path: {**counts, "score": round(score(counts), 4)} for path, counts in sorted(files.items())},
        "survivors": survivors,
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    killed = total["killed"] + total["timeout"]
    print(
        f"mutation score {raw:.1%} ({killed} of {tested} killed; {len(survivors)} survived, {n_equivalent} of them "
        f"equivalent: {adjusted:.1%} without them; {total['not_run']} not run) in {result['seconds']} s; "
        f"{RESULTS.relative_to(ROOT)}"
    )
    return 0 if adjusted >= TARGET and not total["not_run"] else 1


def _carry_over(
    chosen: list[Group], groups: dict[str, Any], files: dict[str, dict[str, int]], survivors: list[dict[str, Any]]
) -> list[str]:
    """A run of some groups keeps the other groups' results from mutation/results.json (named in
    ``groups_from_an_earlier_run``), so the file always covers every group that has run once."""
    if not RESULTS.exists():
        return []
    earlier = json.loads(RESULTS.read_text())
    names = {g.name for g in chosen}
    carried = [name for name in earlier.get("groups", {}) if name not in names]
    kept_files = {
        path
        for g in GROUPS
        if g.name in carried
        for path in earlier.get("files", {})
        if any(fnmatch.fnmatch(path, f) for f in g.files)
    }
    for name in carried:
        groups[name] = earlier["groups"][name]
    for path in kept_files:
        files[path] = {k: v for k, v in earlier["files"][path].items() if k != "score"}
    survivors += [s for s in earlier.get("survivors", []) if s["file"] in kept_files]
    return carried


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
