"""``python -m bench`` (``make bench``): every benchmark, a results file and a readable table.

Each measurement runs in its own fresh interpreter (``python -m bench.<module> --out <tmp>``) so one
cannot warm up, slow down or patch another, and the latency-sensitive ones run with nothing else
on the machine. Results are merged into ``bench/results.json``; the table at the end puts every
figure next to its target.

    python -m bench                      everything (about 10 minutes on 2 cores)
    python -m bench --quick              a smaller smoke run, written to the temp folder
    python -m bench --only fanout,load   some steps; the other keys of results.json are kept
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, bench_env, machine

RESULTS = ROOT / "bench" / "results.json"

# name -> (module, extra arguments, timeout in seconds). Latency-sensitive steps first, on a quiet
# machine; the request counts (deterministic, CPU-bound on moto) last.
STEPS: dict[str, tuple[str, list[str], int]] = {
    "zip": ("bench.zip_size", [], 360),  # first: bench.cold_start unpacks the zip it builds
    "cold_start": ("bench.cold_start", [], 240),
    "fanout": ("bench.fanout", ["--store", "ddblocal"], 300),
    "fanout_moto": ("bench.fanout", ["--store", "moto"], 420),
    "load": ("bench.load", ["--store", "ddblocal"], 600),
    "contention": ("bench.contention", ["--store", "ddblocal"], 300),
    "webhook_latency": ("bench.webhook_latency", [], 300),
    "fairness": ("bench.fairness", ["--store", "ddblocal"], 420),
    "attention": ("bench.attention_latency", ["--store", "ddblocal"], 420),
    "ddb_requests": ("bench.ddb_requests", ["--store", "moto"], 600),
    "analytics": ("bench.analytics", ["--store", "ddblocal"], 900),
}


def run_step(name: str, quick: bool, shared: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    module, extra, timeout = STEPS[name]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", module, "--out", str(out), *extra, *(["--quick"] if quick else [])]
        print(f"\n== {name}: {' '.join(cmd[1:3] + extra)}", flush=True)
        started = time.perf_counter()
        status = "ok"
        detail = ""
        try:
            done = subprocess.run(
                cmd,
                cwd=ROOT,
                env={**bench_env(), "BENCH_ZIP": str(shared / "deployment.zip")},
                timeout=timeout,
                check=False,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            if done.returncode != 0:
                status, detail = "failed", done.stdout[-3000:]
        except subprocess.TimeoutExpired as exc:
            status, detail = "timeout", f"did not finish within {timeout}s; " + str(exc.output or "")[-2000:]
        seconds = round(time.perf_counter() - started, 1)
        result: dict[str, Any] = json.loads(out.read_text()) if status == "ok" and out.exists() else {}
    print(f"   {status} in {seconds}s", flush=True)
    if detail:
        print(detail, flush=True)
    return result, {"status": status, "seconds": seconds, **({"error": detail[-1500:]} if detail else {})}


# ------------------------------------------------------------------------------------------- table


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, limit, met) for every target of the benchmark issue."""
    rows: list[tuple[str, str, str, bool | None]] = []
    ddb = results.get("ddb_requests") or {}
    coach = ddb.get("coach.send")
    if coach:
        worst = max(coach["small"], coach["large"] if coach["large"] is not None else coach["small"])
        rows.append(("coach.send DynamoDB requests", str(worst), "<= 3", worst <= 3))
    if ddb:
        grew = [a for a, r in ddb.items() if r["small"] != r["large"]]
        over = [a for a, r in ddb.items() if r["budget"] is not None and max(r["small"], r["large"] or 0) > r["budget"]]
        rows.append(("actions whose count grows with tenant size", ", ".join(grew) or "none", "none", not grew))
        rows.append(("actions over their documented budget", ", ".join(over) or "none", "none", not over))
    for key in ("fanout", "fanout_moto"):
        fan = results.get(key) or {}
        if fan.get("ratio_p99") is not None:
            label = "fan-out p99 / echo p99, 200 conns" + (", moto fallback store" if key.endswith("moto") else "")
            rows.append(
                (label, f"{fan['p99_ms']} / {fan['echo_p99_ms']} ms = {fan['ratio_p99']}x", "<= 2x", fan["ratio_p99"] <= 2)
            )
    cold = results.get("cold_start") or {}
    if cold.get("ratio") is not None:
        rows.append(
            (
                "import app / bare Chalice+boto3",
                f"{cold['app_s']} / {cold['bare_s']} s = {cold['ratio']}x",
                "<= 1.3x",
                cold["ratio"] <= 1.3,
            )
        )
    if "zip_mb" in results:
        zip_mb = results["zip_mb"]
        rows.append(
            (
                "Lambda zip",
                f"{zip_mb} MB" if zip_mb is not None else "not built",
                "<= 15 MB",
                None if zip_mb is None else zip_mb <= 15,
            )
        )
    load = results.get("load") or {}
    if load:
        for key in ("lost", "duplicated", "out_of_order", "leaked_to_customers"):
            rows.append((f"load: {key}", str(load[key]), "0", load[key] == 0))
    contention = results.get("contention") or {}
    if contention:
        rows.append(
            (
                f"contention: refused of {contention['acked'] + contention['refused']} (10 writers)",
                str(contention["refused"]),
                "0",
                contention["refused"] == 0,
            )
        )
        rows.append(("contention: seq gapless", str(contention["seq_gapless"]), "True", contention["seq_gapless"]))
    hooks = results.get("webhook_latency") or {}
    if hooks:
        rows.append(
            (
                "webhooks: delivered of sent",
                f"{hooks['delivered']} of {hooks['samples']}",
                "all",
                hooks["delivered"] == hooks["samples"],
            )
        )
        rows.append(
            (
                "webhook p50 / WebSocket push p50",
                f"{hooks['webhook']['p50_ms']} / {hooks['push']['p50_ms']} ms = {hooks['webhook_to_push_p50']}x",
                "-",
                None,
            )
        )
    fair = results.get("fairness") or {}
    if fair:
        rows.append(
            (
                "other tenant's webhook p99, noisy / quiet",
                f"{fair['noisy']['p99_ms']} / {fair['quiet']['p99_ms']} ms = {fair['ratio_p99']}x",
                "<= 2x",
                fair["ratio_p99"] <= 2,
            )
        )
        rows.append(("fairness: webhooks lost", str(fair["lost"]), "0", fair["lost"] == 0))
    attention = results.get("attention") or {}
    for key, label, limit_ms in (
        ("keyword_commit_to_push", "attention: keyword alert, commit -> supervisor's push", 2000),
        ("waiting_threshold_to_push", "attention: customer_waiting alert, threshold -> push", 5000),
    ):
        figure = attention.get(key) or {}
        if figure.get("p99_ms") is not None:
            rows.append(
                (
                    f"{label} (p50 / p99)",
                    f"{figure['p50_ms']} / {figure['p99_ms']} ms",
                    f"p99 <= {limit_ms} ms",
                    figure["p99_ms"] <= limit_ms,
                )
            )
    requests = attention.get("requests") or {}
    if "per_entry_quiet" in requests:
        rows.append(
            (
                "attention: DynamoDB requests per evaluated entry (no alert / alert)",
                f"{requests['per_entry_quiet']} / {requests['per_entry_match']}",
                "-",
                None,
            )
        )
    return rows


def table(results: dict[str, Any]) -> str:
    lines = []
    ddb = results.get("ddb_requests") or {}
    if ddb:
        tenants = (results.get("ddb_requests_detail") or {}).get("tenants", {})
        small = tenants.get("small", {}).get("users", "small")
        large = tenants.get("large", {}).get("users", "large")
        lines.append(f"DynamoDB requests per action (tenant of {small} users vs {large} users; teams of equal size)")
        lines.append(f"  {'action':<30} {'small':>6} {'large':>6} {'budget':>7}")
        for action, row in ddb.items():
            flag = "" if row["small"] == row["large"] and (row["budget"] is None or row["small"] <= row["budget"]) else "  <--"
            lines.append(f"  {action:<30} {_fmt(row['small']):>6} {_fmt(row['large']):>6} {_fmt(row['budget']):>7}{flag}")
        lines.append("")
    fans = [
        (k, t)
        for k, t in (
            ("fanout_20", "DynamoDB Local, 20"),
            ("fanout", "DynamoDB Local, 200"),
            ("fanout_20_moto", "moto server, 20"),
            ("fanout_moto", "moto server, 200"),
        )
        if (results.get(k) or {}).get("p50_ms") is not None
    ]
    if fans:
        lines.append("Fan-out: coach.send -> coach.message on each of 8 recipients, vs ping -> ack (echo), in ms")
        lines.append(
            f"  {'store, live connections':<26} {'p50':>8} {'p99':>9} {'echo p50':>9} {'echo p99':>9} "
            f"{'p99 ratio':>10} {'ack p50':>8}"
        )
        for key, title in fans:
            fan = results[key]
            lines.append(
                f"  {title:<26} {fan['p50_ms']:>8} {fan['p99_ms']:>9} {fan['echo_p50_ms']:>9} "
                f"{fan['echo_p99_ms']:>9} {str(fan['ratio_p99']) + 'x':>10} "
                f"{fan.get('coach_send_ack', {}).get('p50_ms'):>8}"
            )
    for key, title in (
        ("cold_start", "virtualenv"),
        ("cold_start_lambda", "Lambda layout, zip as packaged"),
        ("cold_start_lambda_pyc", "Lambda layout, zip + .pyc"),
    ):
        cold = results.get(key) or {}
        if cold.get("app_s") is not None:
            lines.append(
                f"Cold start ({title}): import app {cold['app_s']} s, bare Chalice + boto3 {cold['bare_s']} s, "
                f"ratio {cold['ratio']}x"
            )
    if results.get("zip_mb") is not None:
        lines.append(f"Lambda zip: {results['zip_mb']} MB ({results['zip_detail'].get('unzipped_mb')} MB unzipped)")
    load = results.get("load") or {}
    if load:
        detail = results.get("load_detail") or {}
        lines.append(
            f"Load ({detail.get('clients')} clients, {detail.get('store')}): " + ", ".join(f"{k} {v}" for k, v in load.items())
        )
    contention = results.get("contention") or {}
    if contention:
        lines.append(
            f"Contention ({contention['writers']} writers x {contention['per_writer']} on one workitem, "
            f"{contention['store']}): refused {contention['refused']}, ack p50 {contention['ack_p50_ms']} ms, "
            f"p99 {contention['ack_p99_ms']} ms, {contention['writes_per_s']} writes/s"
        )
    hooks = results.get("webhook_latency") or {}
    if hooks:
        lines.append(
            f"Outbound webhooks ({hooks['samples']} coach messages, local stack): commit -> receiver p50 "
            f"{hooks['webhook']['p50_ms']} ms, p95 {hooks['webhook']['p95_ms']} ms; commit -> WebSocket push p50 "
            f"{hooks['push']['p50_ms']} ms, p95 {hooks['push']['p95_ms']} ms"
        )
    fair = results.get("fairness") or {}
    if fair:
        lines.append(
            f"Fair delivery ({fair['samples']} coach messages of a quiet tenant, {fair['store']}): commit -> receiver "
            f"p50 {fair['quiet']['p50_ms']} ms, p99 {fair['quiet']['p99_ms']} ms alone; p50 {fair['noisy']['p50_ms']} ms, "
            f"p99 {fair['noisy']['p99_ms']} ms while a noisy tenant queued {fair['noise']['deliveries_queued']} deliveries "
            f"to a receiver that never answers (ratios {fair['ratio_p50']}x, {fair['ratio_p99']}x)"
        )
    analytics = results.get("analytics") or {}
    if analytics.get("reads"):
        t = analytics["tenant"]
        lines.append(
            f"Coaching analytics ({analytics['store']}; {t['agents']} agents, {t['days']} days, {t['buckets']} day buckets):"
        )
        for label, read in analytics["reads"].items():
            lines.append(
                f"  {label:<20} {read['rows']:>4} rows, {read['requests_total']:>3} requests {read['requests']}, "
                f"p50 {read['p50_ms']} ms, p99 {read['p99_ms']} ms"
            )
        for label, write in analytics["writes_per_event"].items():
            lines.append(f"  write: {label:<24} {write['requests']}")
    lines.append("")
    lines.append(f"  {'target':<44} {'measured':<34} {'limit':<9} result")
    for name, measured, limit, met in targets(results):
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        lines.append(f"  {name:<44} {measured:<34} {limit:<9} {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write bench/results.json")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--only", default="", help=f"comma-separated steps among: {', '.join(STEPS)}")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default: bench/results.json; with --quick, a file in the temp folder)",
    )
    parser.add_argument("--table", action="store_true", help="only print the table of the existing results file")
    args = parser.parse_args()
    if args.out is None:  # a smoke run never overwrites the results of record
        args.out = Path(tempfile.gettempdir()) / "bench-results-quick.json" if args.quick else RESULTS
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return 0
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(STEPS)
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        parser.error(f"unknown step(s): {', '.join(unknown)}")

    results: dict[str, Any] = {}
    if args.only and args.out.exists():
        results = json.loads(args.out.read_text())  # keep the steps that are not re-run
    started = time.perf_counter()
    steps = dict(results.get("steps", {}))
    with tempfile.TemporaryDirectory(prefix="bench-run-") as shared:
        for name in chosen:
            result, status = run_step(name, args.quick, Path(shared))
            results.update(result)
            steps[name] = status
    results["steps"] = steps
    results["machine"] = machine()
    results["quick"] = args.quick
    results["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = [{"target": n, "measured": m, "limit": lim, "met": met} for n, m, lim, met in targets(results)]
    ordered: dict[str, Any] = {
        k: results[k] for k in ("generated_at", "machine", "runtime_s", "quick", "targets", "steps") if k in results
    }
    ordered.update({k: v for k, v in results.items() if k not in ordered})
    args.out.write_text(json.dumps(ordered, indent=2) + "\n")
    print("\n" + table(ordered))
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} in {results['runtime_s']}s")
    failed = [n for n in chosen if steps[n]["status"] != "ok"]
    if failed:
        print(f"steps that did not complete: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
