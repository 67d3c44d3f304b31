"""`ftk eval`: score endpoints side by side on a held-out set; exit 1 on merge drift or a regression."""

from __future__ import annotations

from pathlib import Path

import typer

from ftk import paths
from ftk.commands.smoke import default_base_url, default_key
from ftk.console import EXIT_INVALID, EXIT_USAGE, UserError, console
from ftk.eval import gate, heldout, report
from ftk.eval.client import Endpoint
from ftk.eval.metrics import METRICS
from ftk.eval.run import run
from ftk.serve.client import read_key
from ftk.settings import Settings, get_settings, split_list


def parse_endpoint(spec: str, url: str, key: str, ca: Path | None) -> Endpoint:
    """NAME=MODEL[@URL] (or MODEL alone: NAME is MODEL)."""
    name, sep, rest = spec.partition("=")
    model, at, where = (rest if sep else spec).partition("@")
    if not name or not model or (at and not where):
        raise UserError(f"endpoint '{spec}': write NAME=MODEL or NAME=MODEL@URL (URL ending in /v1)", EXIT_USAGE)
    where = (where or url).rstrip("/")
    if not where.endswith("/v1"):
        raise UserError(f"endpoint '{spec}': the URL {where} must end in /v1", EXIT_USAGE)
    return Endpoint(name if sep else model, model, where, key, ca if where.startswith("https://") else None)


def default_endpoints(s: Settings) -> list[str]:
    specs = split_list(s.eval_endpoints)
    if specs:
        return specs
    return [f"base={s.served_model_name}"] + [
        f"{n}={n}" for n in (x.partition("=")[0] for x in split_list(s.lora_modules))
    ]


def eval_cmd(
    endpoint: list[str] = typer.Option(
        [], "--endpoint", "-e", help="NAME=MODEL\\[@URL], repeatable (default: EVAL_ENDPOINTS, else base + adapters)"
    ),
    eval_set: Path = typer.Option(None, "--heldout", help="held-out file (default: EVAL_SET)"),
    base_url: str = typer.Option("", "--base-url", help="URL for endpoints without one (default: EVAL_BASE_URL)"),
    api_key_file: Path = typer.Option(None, "--api-key-file", help="key file (default: EVAL_API_KEY_FILE)"),
    ca: Path = typer.Option(None, "--ca", help="CA certificate for https (default: TLS_CA when it exists)"),
    release: str = typer.Option(None, "--release", help="endpoint serving the current release (EVAL_RELEASE)"),
    candidate: str = typer.Option(None, "--candidate", help="endpoint about to be promoted (EVAL_CANDIDATE)"),
    drift: list[str] = typer.Option([], "--drift", help="MERGED:ADAPTER endpoint names that must agree (EVAL_DRIFT)"),
    max_regression: float = typer.Option(None, "--max-regression", min=0, max=1, help="(EVAL_MAX_REGRESSION)"),
    max_drift: float = typer.Option(None, "--max-drift", min=0, max=1, help="(EVAL_MAX_DRIFT)"),
    judge: str = typer.Option(None, "--judge", help="NAME=MODEL\\[@URL] grading each answer 0-10 (EVAL_JUDGE)"),
    limit: int = typer.Option(0, "--limit", min=0, help="score only the first N held-out samples"),
    out_dir: Path = typer.Option(None, "--out", help="report folder (default: EVAL_REPORT_DIR)"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report instead of the table"),
) -> None:
    """Score endpoints side by side (OpenAI SDK, greedy) on a held-out set: exact, contains, chrF (and a judge).

    Writes EVAL_REPORT_DIR/report.json and scores.png. Exit 1 when merged and adapter answers drift apart, or the
    candidate regresses against the release beyond the threshold (a release promote uses this as its gate).
    """
    s = get_settings()
    url = (base_url or s.eval_base_url or default_base_url(s)).rstrip("/")
    key_file = api_key_file or (s.eval_api_key_file if str(s.eval_api_key_file) not in ("", ".") else None)
    key = read_key(paths.resolve(key_file)) if key_file else default_key(s)
    ca_path = paths.resolve(ca) if ca else (s.path("tls_ca") if s.path("tls_ca").is_file() else None)
    endpoints = [parse_endpoint(e, url, key, ca_path) for e in (endpoint or default_endpoints(s))]
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise UserError(f"endpoint names must differ: {', '.join(names)}", EXIT_USAGE)
    release = s.eval_release if release is None else release
    candidate = s.eval_candidate if candidate is None else candidate
    pairs = [tuple(p.split(":", 1)) for p in (drift or split_list(s.eval_drift))]
    for who in [release, candidate, *(n for p in pairs for n in p)]:
        if who and who not in names:
            raise UserError(
                f"'{who}' is not one of the endpoints ({', '.join(names)}); name it with --endpoint", EXIT_USAGE
            )
    if any(len(p) != 2 for p in pairs):
        raise UserError("--drift takes MERGED:ADAPTER endpoint names", EXIT_USAGE)
    judge_spec = s.eval_judge if judge is None else judge
    judge_ep = parse_endpoint(judge_spec, url, key, ca_path) if judge_spec else None
    gated = [m for m in split_list(s.eval_gate_metrics) if m in (*METRICS, "judge")]
    if "judge" in gated and judge_ep is None:
        gated.remove("judge")
    items = heldout.load(paths.resolve(eval_set or s.eval_set), s.assistant_name, s.assistant_author, limit)
    scored = run(endpoints, items, s.eval_max_length, float(s.smoke_timeout), judge_ep)
    summary = scored.summary()
    result = gate.evaluate(
        summary,
        scored.answers,
        candidate or None,
        release or None,
        gated,
        s.eval_max_regression if max_regression is None else max_regression,
        [(a, b) for a, b in pairs],
        s.eval_max_drift if max_drift is None else max_drift,
    )
    folder = paths.resolve(out_dir or s.eval_report_dir)
    data = {
        "set": str(eval_set or s.eval_set),
        "endpoints": [{"name": e.name, "model": e.model, "base_url": e.base_url} for e in endpoints],
        "summary": summary,
        "gate": report.gate_dict(result),
        "samples": [
            {
                "prompt": it.prompt,
                "reference": it.reference,
                "expect": it.expect,
                "answers": {n: scored.answers[n][i] for n in names},
                "scores": {n: scored.scores[n][i] for n in names},
            }
            for i, it in enumerate(items)
        ],
    }
    report.write_json(data, folder / "report.json")
    report.plot(summary, folder / "scores.png")
    if as_json:
        console.print_json(data=data)
    else:
        console.print(report.table(summary, len(items), release or None, candidate or None))
        for share_key, share in result.drift.items():
            console.print(f"merge drift {share_key}: {share:.0%} of the answers differ", markup=False)
        for f in result.findings:
            console.print(f"[red]FAIL[/] {f.render()}", soft_wrap=True)
        console.print(f"report: {folder / 'report.json'}, plot: {folder / 'scores.png'}", markup=False, soft_wrap=True)
        console.print("gate: passed" if result.passed else "gate: failed", markup=False)
    if not result.passed:
        raise typer.Exit(EXIT_INVALID)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
