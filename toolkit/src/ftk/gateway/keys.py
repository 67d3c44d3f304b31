"""Gateway API keys: one file (API_KEYS_FILE, mode 0600) that `ftk run gateway` turns into nginx maps.

One key per line: ``KEY [NAME [STATUS [CREATED [FIELD=VALUE...]]]]``, whitespace-separated; ``#`` starts a
comment. STATUS is ``active`` (default) or ``revoked`` (the gateway answers 403). One bare key per line is valid
too. The optional FIELD=VALUE tokens are the key's policy (ftk.gateway.policy: allowed models, caps, limits);
a line without them keeps the gateway's defaults, so files written before policies existed read as they did.
Logs and listings only ever show the key id: the first 12 hex digits of the key's sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ftk import paths
from ftk.console import UserError
from ftk.gateway.policy import Policy

KEY_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
STATUSES = ("active", "revoked")
HEADER = (
    "# ftk gateway API keys: KEY NAME STATUS CREATED [models=GLOB,... max_tokens=N n=N images=N rps=N burst=N"
    " conns=N] (STATUS active|revoked). Secret: keep this file 0600.\n"
)


def key_id(key: str) -> str:
    """What logs and listings show instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def new_key() -> str:
    return "sk-ftk-" + secrets.token_urlsafe(32)


@dataclass
class KeyRecord:
    key: str
    name: str
    status: str = "active"
    created: str = ""
    line: int = 0
    policy: Policy = field(default_factory=Policy)

    @property
    def id(self) -> str:
        return key_id(self.key)

    def format(self) -> str:
        tokens = self.policy.tokens()
        extra = "\t" + " ".join(tokens) if tokens else ""
        return f"{self.key}\t{self.name}\t{self.status}\t{self.created or '-'}{extra}\n"


def read_keys(path: Path) -> list[KeyRecord]:
    """Every key in the file; a malformed line is an error naming the file and line."""
    if not path.exists():
        return []
    records: list[KeyRecord] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        key = fields[0]
        if not KEY_RE.match(key):
            raise UserError(
                f"{path}:{n}: the key is not 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -; "
                "replace it with one from `ftk gateway keys add NAME`"
            )
        name = fields[1] if len(fields) > 1 else key_id(key)
        status = fields[2] if len(fields) > 2 else "active"
        if status not in STATUSES:
            raise UserError(f"{path}:{n}: status '{status}' is neither active nor revoked; fix that line")
        created = fields[3] if len(fields) > 3 and fields[3] != "-" else ""
        policy = Policy.parse(fields[4:], f"{path}:{n}")
        records.append(KeyRecord(key, name, status, created, n, policy))
    return records


def first_active_key(path: Path) -> str:
    """The key a local client (smoke test, demo) uses: the first active one."""
    for record in read_keys(path):
        if record.status == "active":
            return record.key
    raise UserError(f"{path} holds no active API key; create one with: ftk gateway keys add NAME")


def write_keys(path: Path, records: list[KeyRecord]) -> None:
    """Atomic write with mode 0600; the previous version is kept as <file>.bak (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copyfile(path, backup)
        os.chmod(backup, 0o600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(HEADER)
        fh.writelines(r.format() for r in records)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def add_key(path: Path, name: str, key: str | None = None, policy: Policy | None = None) -> KeyRecord:
    if not NAME_RE.match(name):
        raise UserError(f"key name '{name}' must be 1-64 characters of A-Z a-z 0-9 . _ -")
    records = read_keys(path)
    if any(r.name == name and r.status == "active" for r in records):
        raise UserError(f"{path}: an active key named '{name}' exists; revoke it first or choose another name")
    key = key or new_key()
    if not KEY_RE.match(key):
        raise UserError("the key must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -")
    if any(r.key == key for r in records):
        raise UserError(f"{path}: this key is already in the file")
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = KeyRecord(key, name, "active", created, policy=policy or Policy())
    write_keys(path, [*records, record])
    return record


def add_key_via_cli(path: Path, name: str, *options: str, env: Mapping[str, str]) -> str:
    """`ftk gateway keys add NAME OPTIONS --quiet --file PATH` run by the toolkit venv's ftk in env; the new key.

    For harnesses (the tests' gateways, tools/bench) that add keys as a user does: env's FTK_HOME and PYTHONPATH
    may name another checkout, whose own code then writes the file (a benchmark baseline)."""
    argv = [str(paths.venv_bin("toolkit", "ftk")), "gateway", "keys", "add", name, *options, "--quiet", "--file"]
    res = subprocess.run([*argv, str(path)], env=dict(env), capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        raise UserError(f"ftk gateway keys add {name} --file {path} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def revoke_key(path: Path, name_or_id: str) -> list[KeyRecord]:
    """Mark every active key with this name or key id as revoked; returns them."""
    records = read_keys(path)
    hit = [r for r in records if r.status == "active" and name_or_id in (r.name, r.id)]
    if not hit:
        raise UserError(f"{path}: no active key named or with id '{name_or_id}'; see `ftk gateway keys list`")
    for r in hit:
        r.status = "revoked"
    write_keys(path, records)
    return hit


def update_key(path: Path, name_or_id: str, changes: dict[str, str]) -> list[KeyRecord]:
    """Apply policy changes (FIELD: VALUE, "" clears the field) to every active key with this name or key id."""
    records = read_keys(path)
    hit = [r for r in records if r.status == "active" and name_or_id in (r.name, r.id)]
    if not hit:
        raise UserError(f"{path}: no active key named or with id '{name_or_id}'; see `ftk gateway keys list`")
    for r in hit:
        r.policy = r.policy.updated(changes, "ftk gateway keys update")
    write_keys(path, records)
    return hit
