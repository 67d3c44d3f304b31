"""A host's first-run state for the compose stack (`ftk init`): idempotent, a second run changes nothing.

Folders the bind mounts need (compose never creates them: `create_host_path: false`), the host user's ids in
`.env` (the containers run as them), and the secrets: the gateway -> vLLM key, Grafana's admin password and a
first client API key. The TLS files are scripts/certs.sh's job; scripts/init.sh runs both as the host user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ftk.console import UserError
from ftk.files import write_atomic
from ftk.gateway import keys as gk
from ftk.secret_file import ensure_secret
from ftk.settings import Settings

FIRST_KEY_NAME = "admin"


@dataclass
class Step:
    what: str
    path: Path
    changed: bool
    note: str = ""


def folders(s: Settings) -> list[Path]:
    """Every host folder a compose service mounts or writes into."""
    runs = s.path("runs_dir")
    return [
        s.path("models_dir"),
        s.path("data_dir"),
        runs,
        runs / "gateway",
        runs / "monitor",
        runs / "release",  # the release pointer compose mounts into gateway-config
        s.path("modelscope_cache"),
        s.path("vllm_api_key_file").parent,
        s.path("api_keys_file").parent,
        s.path("grafana_admin_password_file").parent,
    ]


def ensure_folders(s: Settings, only_under: Path | None = None) -> list[Step]:
    """Make the folders; with `only_under` (the project folder, all the init container sees) a folder outside it
    is an error naming the setting, since making it in the container would not make it on the host."""
    out: list[Step] = []
    for folder in dict.fromkeys(folders(s)):
        if only_under is not None and not folder.is_relative_to(only_under) and not folder.is_dir():
            raise UserError(
                f"{folder} is outside the project folder {only_under}, the only host folder `init` sees: "
                f"create it on the host (mkdir -p {folder}, owned by you) or set a path inside the project in .env"
            )
        existed = folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        out.append(Step("folder", folder, not existed))
    return out


def set_env_ids(env_file: Path, uid: int, gid: int) -> Step:
    """FTK_UID/FTK_GID in `.env` set to the host user's ids; other lines untouched, the old file kept as .env.bak."""
    if not env_file.is_file():
        raise UserError(f"{env_file} does not exist; make it first: cp .env.example .env")
    text = env_file.read_text(encoding="utf-8")
    new = text
    for key, value in (("FTK_UID", uid), ("FTK_GID", gid)):
        line = f"{key}={value}"
        pattern = re.compile(rf"^{key}=.*$", re.MULTILINE)
        if pattern.search(new):
            new = pattern.sub(line, new, count=1)
        else:
            new = new + ("" if new.endswith("\n") or not new else "\n") + line + "\n"
    if new == text:
        return Step("ids", env_file, False, f"FTK_UID={uid} FTK_GID={gid}")
    write_atomic(env_file, new, keep_old=True)
    return Step("ids", env_file, True, f"FTK_UID={uid} FTK_GID={gid} (previous file: {env_file.name}.bak)")


def secret(path: Path, what: str) -> Step:
    return Step(what, path, ensure_secret(path))


def ensure_first_key(path: Path) -> tuple[Step, str]:
    """A first client API key when the file has no active one: (step, the key to show once, or '')."""
    if any(r.status == "active" for r in gk.read_keys(path)):
        return Step("client key", path, False, "an active key is there (ftk gateway keys list)"), ""
    record = gk.add_key(path, FIRST_KEY_NAME)
    return Step("client key", path, True, f"key '{record.name}' (id {record.id})"), record.key
