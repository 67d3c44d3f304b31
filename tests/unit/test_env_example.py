""".env.example is the documented settings file of a GPU host: every key of settings.py once, grouped by
stage in the order of settings.py, each with what it does and its built-in default, values for one 24 GB GPU
that agree with each other, and notes for 2 x 24 GB and 8 x 80 GB. Every parser that reads it (ftk, the
scripts' load_env, compose's env_file) sees the same values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from conftest import HOME, clean_env, run_ftk
from ftk.settings import Settings
from test_compose import compose_bin

EXAMPLE = HOME / ".env.example"
SETTINGS_PY = HOME / "toolkit/src/ftk/settings.py"
KEY_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
SECRET_NAME_RE = re.compile(r"(API_KEY|PASSWORD|TOKEN(?!S)|SECRET|TLS_KEY)")  # *_TOKENS are counts (max_tokens caps)


def settings_sections() -> dict[str, str]:
    """KEY -> section name, from the `# --- name ---` comments of settings.py."""
    out: dict[str, str] = {}
    section = ""
    for line in SETTINGS_PY.read_text().splitlines():
        m = re.match(r"^    # --- ([a-z ]+?) -+$", line)
        if m:
            section = m.group(1)
            continue
        f = re.match(r"^    ([a-z_][a-z0-9_]*): ", line)
        if f and f.group(1) in Settings.model_fields:
            out[f.group(1).upper()] = section
    return out


def blocks() -> list[dict]:
    """Each key with its line number, value, section header and the comment lines right above it."""
    out = []
    section = ""
    comments: list[str] = []
    for n, line in enumerate(EXAMPLE.read_text().splitlines(), start=1):
        header = re.match(r"^# ===== ([a-z ]+?)[: ]", line)
        if header:
            section, comments = header.group(1), []
            continue
        m = KEY_RE.match(line)
        if m:
            out.append({"key": m.group(1), "value": m.group(2), "line": n, "section": section, "doc": comments})
            comments = []
        elif line.startswith("#"):
            comments.append(line.lstrip("# ").rstrip())
        else:
            comments = []
    return out


def values() -> dict[str, str]:
    return {b["key"]: b["value"] for b in blocks()}


def rendered_default(key: str) -> str:
    value = Settings.model_fields[key.lower()].default
    if isinstance(value, bool):
        return str(value).lower()
    return "empty" if value is None or str(value) in ("", ".") else str(value)


def notes(key: str) -> dict[str, str]:
    """The `2x24:` / `8x80:` values in the comment above KEY."""
    block = next(b for b in blocks() if b["key"] == key)
    found = {}
    for line in block["doc"]:
        for host, value in re.findall(r"(2x24|8x80):\s*([^;(]+)", line):
            found[host] = value.strip()
    return found


def gpu_count(devices: str) -> int | None:
    return None if devices == "all" else len([d for d in devices.split(",") if d.strip()])


def test_every_settings_key_once_and_env_check_passes():
    keys = [b["key"] for b in blocks()]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f".env.example sets {dupes} more than once"
    missing = sorted(set(settings_sections()) - set(keys))
    assert not missing, f".env.example lacks {missing}: add each with its comment and `# default:` line"
    r = run_ftk("env", "check", str(EXAMPLE))
    assert r.returncode == 0, f"ftk env check .env.example:\n{r.stderr}"


def test_keys_are_grouped_by_stage_in_the_order_of_settings_py():
    sections = settings_sections()
    for b in blocks():
        want = sections.get(b["key"])
        assert b["section"] == want, (
            f".env.example:{b['line']}: {b['key']} is under '{b['section']}', settings.py has it in '{want}'"
        )
    order = list(dict.fromkeys(sections.values()))
    seen = list(dict.fromkeys(b["section"] for b in blocks()))
    assert seen == order, f".env.example sections {seen} are not in the order of settings.py {order}"


def test_each_key_says_what_it_does_and_its_default():
    for b in blocks():
        where = f".env.example:{b['line']}: {b['key']}"
        doc = [d for d in b["doc"] if not d.startswith("default:")]
        assert doc, f"{where}: no comment above it saying what it does"
        defaults = [d for d in b["doc"] if d.startswith("default:")]
        assert defaults, f"{where}: no `# default: ...` line above it"
        want = rendered_default(b["key"])
        assert defaults[0].split(":", 1)[1].strip().startswith(want), (
            f"{where}: the comment says `{defaults[0]}` but settings.py's default is {want}"
        )


def test_header_explains_the_host_sizes():
    head = EXAMPLE.read_text().split("# =====", 1)[0]
    for phrase in ("24 GB", "2x24", "8x80", "cp .env.example .env", "ftk env check", "default:"):
        assert phrase in head, f".env.example header does not mention {phrase!r}"


def test_values_fit_one_24gb_gpu_host():
    v = values()
    assert v["ALLOW_CPU"] == "false", "a GPU host must run the GPU preflight (ALLOW_CPU=false)"
    assert int(v["TRAIN_GPUS"]) == 1 == gpu_count(v["TRAIN_GPU_DEVICES"]), "one GPU: TRAIN_GPUS=1, one device id"
    assert int(v["TENSOR_PARALLEL_SIZE"]) == gpu_count(v["SERVE_GPU_DEVICES"]), (
        "TENSOR_PARALLEL_SIZE must equal the number of SERVE_GPU_DEVICES"
    )
    assert (v["GATEWAY_HTTPS_PORT"], v["GATEWAY_HTTP_PORT"]) == ("443", "80")
    assert v["PROMETHEUS_BIND"] == v["GRAFANA_BIND"] == "127.0.0.1", "monitoring must stay on loopback by default"
    assert (HOME / v["TRAIN_RECIPE"]).is_file(), f"TRAIN_RECIPE={v['TRAIN_RECIPE']} does not exist"
    assert (HOME / v["MERGE_RECIPE"]).is_file(), f"MERGE_RECIPE={v['MERGE_RECIPE']} does not exist"
    assert 0 < float(v["GPU_MEMORY_UTILIZATION"]) <= 0.95
    if v["LIMIT_MM_PER_PROMPT"]:
        assert isinstance(json.loads(v["LIMIT_MM_PER_PROMPT"]), dict), "LIMIT_MM_PER_PROMPT must be a JSON object"


def test_multi_gpu_notes_agree_with_each_other():
    tp = notes("TENSOR_PARALLEL_SIZE")
    serve = notes("SERVE_GPU_DEVICES")
    train = notes("TRAIN_GPUS")
    train_dev = notes("TRAIN_GPU_DEVICES")
    for host in ("2x24", "8x80"):
        for key, got in (
            ("TENSOR_PARALLEL_SIZE", tp),
            ("SERVE_GPU_DEVICES", serve),
            ("TRAIN_GPUS", train),
            ("TRAIN_GPU_DEVICES", train_dev),
        ):
            assert host in got, f".env.example: {key} has no `{host}:` note"
        tp_n = int(tp[host].split()[0])
        assert gpu_count(serve[host].split()[0]) == tp_n, f"{host}: SERVE_GPU_DEVICES {serve[host]} != TP {tp_n}"
        devices = gpu_count(train_dev[host].split()[0])
        gpus = int(train[host].split()[0])
        assert devices in (None, gpus), f"{host}: TRAIN_GPU_DEVICES {train_dev[host]} != TRAIN_GPUS {gpus}"
    assert int(tp["2x24"].split()[0]) == 2, "2 x 24 GB serves with tensor parallel 2"


def test_no_secret_value_only_secret_files():
    for b in blocks():
        if SECRET_NAME_RE.search(b["key"]) and b["value"]:
            assert b["key"].endswith(("_FILE", "TLS_KEY")), f"{b['key']}: secrets are files, not values"
            assert b["value"].startswith(("runs/secrets/", "runs/certs/")), (
                f"{b['key']}={b['value']}: keep secret files under runs/ (git-ignored, out of images)"
            )


def test_shell_and_compose_read_the_same_values_as_ftk(tmp_path):
    """load_env (scripts), compose's env_file and ftk parse quoting alike, e.g. LIMIT_MM_PER_PROMPT's JSON."""
    v = values()
    script = f'source "{HOME}/scripts/lib/common.sh"; load_env "{EXAMPLE}"; ' + "; ".join(
        f'printf "%s\\0" "${{{k}}}"' for k in v
    )
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    shell = dict(zip(v, r.stdout.split("\0"), strict=False))
    r = run_ftk("env", "export", env=clean_env(FTK_ENV_FILE=str(EXAMPLE)))
    assert r.returncode == 0, r.stderr
    for key in ("LIMIT_MM_PER_PROMPT", "ASSISTANT_AUTHOR", "MODEL_ID", "LEARNING_RATE"):
        assert shell[key] == v[key], f"scripts/lib/common.sh load_env reads {key}={shell[key]!r}, not {v[key]!r}"
    # compose: a copy of the project with .env.example as its .env, so env_file reads it
    shutil.copy(HOME / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(EXAMPLE, tmp_path / ".env")
    r = subprocess.run(
        [
            str(compose_bin()),
            "--project-directory",
            str(tmp_path),
            "-f",
            str(tmp_path / "compose.yaml"),
            "--profile",
            "serve",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)["services"]["serve"]["environment"]
    for key in (
        "LIMIT_MM_PER_PROMPT",
        "ASSISTANT_AUTHOR",
        "MODEL_ID",
        "TENSOR_PARALLEL_SIZE",
        "LEARNING_RATE",
    ):
        assert env[key] == v[key], f"compose env_file reads {key}={env[key]!r}, .env.example has {v[key]!r}"
    assert env["VLLM_HOST"] == "0.0.0.0", "compose's environment must win over env_file for VLLM_HOST"
    assert env["MODELS_DIR"] == "models" and env["FTK_HOME"] == "/app"
    assert Path(EXAMPLE).stat().st_size > 0


def test_env_check_rejects_compose_values_compose_would_accept_blindly(tmp_path):
    """GPU ids with spaces, sizes and durations compose passes through to a failing `up` are caught early."""
    bad = tmp_path / "gpu.env"
    bad.write_text(
        "SERVE_GPU_DEVICES=0 1\nTRAIN_GPU_DEVICES=gpu0\nSHM_SIZE=lots\nSERVE_START_PERIOD=15 minutes\n"
        "VLLM_IMAGE=vllm/vllm-openai:latest\nFTK_IMAGE_TAG=latest\n"
    )
    bad.chmod(0o600)
    r = run_ftk("env", "check", str(bad))
    assert r.returncode == 1
    for n, key in enumerate(
        [
            "SERVE_GPU_DEVICES",
            "TRAIN_GPU_DEVICES",
            "SHM_SIZE",
            "SERVE_START_PERIOD",
            "VLLM_IMAGE",
            "FTK_IMAGE_TAG",
        ],
        start=1,
    ):
        assert f"{bad}:{n}: {key}=" in r.stderr, f"env check does not name {key} on line {n}:\n{r.stderr}"
    good = tmp_path / "good.env"
    good.write_text("SERVE_GPU_DEVICES=4,5,6,7\nTRAIN_GPU_DEVICES=all\nSHM_SIZE=64gb\nSERVE_START_PERIOD=1h30m\n")
    good.chmod(0o600)
    r = run_ftk("env", "check", str(good))
    assert r.returncode == 0, r.stderr
