"""Per-key policy in the key file: old lines keep today's behaviour, new fields round-trip, bad values name the line,
the nginx maps and limit zones it becomes pass `nginx -t` (with njs loaded)."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
from ftk.console import UserError
from ftk.gateway import keys as gk
from ftk.gateway import nginx_conf
from ftk.gateway.policy import Policy, glob_regex
from ftk.settings import Settings
from ftk.stages import gateway as stage

ALICE, BOB, CAROL = "sk-ftk-aaaaaaaaaaaaaaaaaaaa", "sk-ftk-bbbbbbbbbbbbbbbbbbbb", "sk-ftk-cccccccccccccccccccc"


def defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_line_without_policy_reads_as_before_and_keeps_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(f"{ALICE} alice active 2026-01-01T00:00:00Z\n{BOB}\n")
    alice, bob = gk.read_keys(path)
    assert alice.policy == Policy() and bob.policy == Policy()
    effective = json.loads(alice.policy.effective_json(defaults()))
    assert effective == {"models": None, "globs": None, "max_tokens": 0, "n": 8, "images": 16}


def test_policy_round_trips_through_the_file_atomically_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "k"
    policy = Policy().updated({"models": "base,support-*", "max_tokens": "2048", "rps": "5"}, "test")
    record = gk.add_key(path, "team-a", ALICE, policy)
    assert "models=base,support-* max_tokens=2048 rps=5" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (back,) = gk.read_keys(path)
    assert back.policy == record.policy == policy
    gk.update_key(path, "team-a", {"rps": "", "n": "2"})
    (back,) = gk.read_keys(path)
    assert (back.policy.rps, back.policy.n, back.policy.models) == (None, 2, ("base", "support-*"))
    assert stat.S_IMODE(path.with_name("k.bak").stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("colour=red", r"k:1: unknown policy field 'colour'; fields: models, max_tokens"),
        ("n=0", r"k:1: n='0' must be a whole number >= 1 \(largest n and best_of\)"),
        ("max_tokens=lots", r"k:1: max_tokens='lots' must be a whole number >= 1"),
        ("models=a$b", r"k:1: models='a\$b': each glob must be 1-128 characters"),
        ("rps", r"k:1: 'rps' is not FIELD=VALUE"),
    ],
)
def test_a_bad_policy_field_names_the_file_line_and_fix(tmp_path: Path, fields: str, message: str) -> None:
    path = tmp_path / "k"
    path.write_text(f"{ALICE} alice active - {fields}\n")
    with pytest.raises(UserError, match=message):
        gk.read_keys(path)


def test_globs_become_expressions_without_backslash_or_dollar() -> None:
    for glob, yes, no in (("support-*", "support-v2", "support"), ("a.b?", "a.bc", "axbc"), ("x+", "x+", "xx")):
        expr = glob_regex(glob)
        assert "\\" not in expr and "$" not in expr
        assert re.fullmatch(expr, yes) and not re.fullmatch(expr, no)


def test_maps_and_zones_hold_policies_by_key_id_and_nginx_accepts_them(tmp_path: Path) -> None:
    s = defaults()
    records = [
        gk.KeyRecord(ALICE, "a", policy=Policy(models=("base", "sup-*"), max_tokens=64, rps=5, burst=1)),
        gk.KeyRecord(BOB, "b", policy=Policy(conns=2, n=2)),
        gk.KeyRecord(CAROL, "c"),
    ]
    maps = nginx_conf.key_maps(records, tmp_path / "k", s)
    limits = nginx_conf.key_limits(records, s)
    a, _, c = (r.id for r in records)
    assert f'{a} \'{{"models":["base","sup-.*"],"globs":["base","sup-*"],"max_tokens":64,"n":8,"images":16}}\';' in maps
    assert f"{c} " not in maps.split("$ftk_policy")[1].split("}\n")[0], "a key without policy gets the default"
    assert "limit_req_zone $ftk_rate_5_1 zone=per_key_5_1:1m rate=5r/s;" in maps
    assert "limit_req zone=per_key_5_1 burst=1 nodelay;" in limits and "limit_conn per_key_conn_2 2;" in limits
    assert f'    {a} "";' in maps.split("$ftk_rate_default")[1].split("}")[0], "own rate: not in the default zone"
    binary = stage.nginx_binary()
    if binary is None:
        pytest.fail("nginx is missing: run `make setup` (scripts/setup.sh debian)")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "api_keys.conf").write_text(maps)
    (conf / "key_limits.conf").write_text(limits)
    (conf / "nginx.conf").write_text(
        f"load_module {s.gateway_njs_module};\nerror_log stderr;\nevents {{}}\nhttp {{\n"
        f"include {conf}/api_keys.conf;\n"
        "limit_req_zone $ftk_rate_default zone=per_key:1m rate=1r/s;\n"  # the template's default zones
        f"limit_conn_zone $ftk_conn_default zone=per_key_conn:1m;\nserver {{ listen 127.0.0.1:1; location / {{\n"
        f"include {conf}/key_limits.conf;\nreturn 200; }} }}\n}}\n"
    )
    res = subprocess.run(
        [binary, "-p", f"{tmp_path}/", "-c", str(conf / "nginx.conf"), "-e", "stderr", "-t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
