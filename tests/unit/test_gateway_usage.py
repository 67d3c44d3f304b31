"""The audit fields of the access log become usage: Prometheus counters per key id and model, and the
`ftk gateway usage` report (table and CSV) across rotated logs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conftest import run_ftk
from ftk.gateway import usage as gu
from ftk.gateway.log_metrics import GatewayLogMetrics


def line(key: str, model: str, status: int, prompt: int | None, completion: int | None, time: str) -> str:
    rec = {
        "time": time,
        "key_id": key,
        "server_port": "8443",
        "path": "/v1/chat/completions",
        "status": status,
        "request_time": 0.1,
        "model": model,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
    }
    return json.dumps(rec) + "\n"


def test_tokens_and_requests_per_key_and_model(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        line("aaa", "base", 200, 7, 3, "t")
        + line("aaa", "base", 200, 5, 2, "t")
        + line("aaa", "made-up-name", 404, None, None, "t")
        + line("bbb", "support", 200, 4, 1, "t")
    )
    m = GatewayLogMetrics(log, {"public": "8443"})
    m.poll()
    text = m.render()
    assert 'ftk_gateway_model_requests_total{key_id="aaa",model="base",status="2xx"} 2' in text
    assert 'ftk_gateway_tokens_total{key_id="aaa",model="base",kind="prompt"} 12' in text
    assert 'ftk_gateway_tokens_total{key_id="aaa",model="base",kind="completion"} 5' in text
    assert 'ftk_gateway_tokens_total{key_id="bbb",model="support",kind="completion"} 1' in text
    assert 'model="-",status="4xx"} 1' in text and "made-up-name" not in text, "a client's model name is no label"


def test_usage_report_reads_rotations_filters_time_and_writes_csv(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with gzip.open(tmp_path / "access.log.2.gz", "wt") as f:
        f.write(line("aaa", "base", 200, 10, 10, "2026-11-30T10:00:00+00:00"))
    (tmp_path / "access.log.1").write_text(line("aaa", "base", 200, 7, 3, "2026-12-01T10:00:00+00:00"))
    log.write_text(
        line("aaa", "base", 400, None, None, "2026-12-02T10:00:00+00:00")
        + line("bbb", "support", 200, 4, 1, "2026-12-02T11:00:00+00:00")
        + "not json\n"
    )
    files = gu.log_files(log)
    assert [p.name for p in files] == ["access.log.2.gz", "access.log.1", "access.log"]
    rows = gu.report(files, {"aaa": "team-a"}, since="2026-12-01")
    assert [(r.key_name, r.model, r.requests, r.errors, r.prompt_tokens, r.total_tokens) for r in rows] == [
        ("-", "support", 1, 0, 4, 5),
        ("team-a", "base", 2, 1, 7, 10),
    ]
    res = run_ftk("gateway", "usage", "--log", str(log), "--csv", "--file", str(tmp_path / "none"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == ",".join(gu.COLUMNS)
    assert "-,aaa,base,3,1,17,13,30" in res.stdout
