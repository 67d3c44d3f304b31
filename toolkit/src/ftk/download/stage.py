"""`ftk run download`: resolve MODEL_ID to a model folder (local, cached or from ModelScope), verify it.

Order: a local folder is only verified. A hub id is fetched into `<MODELSCOPE_CACHE>/models/<Org>/<Name>` (the
path settings.base_model_path gives to train and serve) after a quick reachability probe, so an offline host
fails in seconds instead of ModelScope's long retry loop; when the hub is unreachable but the cache holds
the model, ModelScope resolves it with `local_files_only` and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk import paths
from ftk.console import EXIT_USAGE, UserError
from ftk.download import hub
from ftk.hf import hub_cache as layout
from ftk.hf.folder import Finding, verify_model_dir
from ftk.settings import Settings

PROBE_TIMEOUT = 5.0  # seconds; also capped by DOWNLOAD_TIMEOUT


@dataclass
class Plan:
    model_id: str
    revision: str
    kind: str  # "local" or "hub"
    target: Path  # the folder train and serve will use
    cache: Path
    endpoint: str


@dataclass
class Outcome:
    plan: Plan
    path: Path
    source: str  # "local folder", "ModelScope", "cache (offline)"
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_local(model_id: str) -> bool:
    """The rule settings.base_model_path uses: an existing folder, or anything spelled like a path."""
    return paths.resolve(model_id).is_dir() or model_id.startswith((".", "/", "~", "models/"))


def plan(settings: Settings, model_id: str | None = None, revision: str | None = None) -> Plan:
    mid = (model_id if model_id is not None else settings.model_id).strip()
    rev = (revision if revision is not None else settings.model_revision).strip()
    flag = model_id is not None
    source = "--model-id" if flag else "MODEL_ID"
    s = settings.model_copy(update={"model_id": mid, "model_revision": rev})
    cache = s.path("modelscope_cache")
    endpoint = s.modelscope_endpoint or hub.DEFAULT_ENDPOINT
    if not mid:
        raise UserError(
            f"{source} is empty; set it to a ModelScope id (Org/Name) or a model folder",
            EXIT_USAGE if flag else 1,
        )
    if is_local(mid):
        return Plan(mid, rev, "local", s.base_model_path, cache, endpoint)
    if not layout.is_hub_id(mid):
        raise UserError(
            f"{source}={mid!r} is neither an existing folder nor a ModelScope id like "
            "Qwen/Qwen2.5-0.5B-Instruct (Org/Name); fix it, or give a folder path (./my-model)",
            EXIT_USAGE if flag else 1,
        )
    return Plan(mid, rev, "hub", s.base_model_path, cache, endpoint)


def describe(p: Plan) -> str:
    if p.kind == "local":
        return f"verify the local model folder {p.target} (MODEL_ID is a folder: nothing to download)"
    return (
        f"download {p.model_id} (revision {p.revision}) from ModelScope ({p.endpoint}) into {p.target}, then verify it"
    )


def run(
    settings: Settings,
    p: Plan,
    *,
    offline: bool = False,
    callbacks: tuple[Callable[[str, int], Any], Callable[[Any, int], None], Callable[[Any], None]] | None = None,
) -> Outcome:
    if p.kind == "local":
        if not p.target.is_dir():
            hint = (
                "build it: `ftk model default`"
                if p.target.name == "SmolLM2-135M-Instruct"
                else "fix MODEL_ID in .env, or set it to a ModelScope id (Org/Name) to download one"
            )
            raise UserError(f"MODEL_ID={p.model_id!r}: folder {p.target} does not exist; {hint}")
        return Outcome(p, p.target, "local folder", verify_model_dir(p.target))

    hub.configure(
        cache=p.cache,
        max_retries=settings.download_max_retries,
        timeout=settings.download_timeout,
        endpoint=settings.modelscope_endpoint,
    )
    notes: list[str] = []
    why = "--offline"
    if not offline:
        why = hub.probe(p.endpoint, min(PROBE_TIMEOUT, float(settings.download_timeout)))
        if why:
            offline = True
            why = f"ModelScope at {hub.host_of(p.endpoint)} is unreachable: {why}"
            notes.append(f"{why}; using the cache only")
    if offline:
        path = _from_cache(p, why)
        return Outcome(p, path, "cache (offline)", verify_model_dir(path), notes)

    _writable(p.target.parent)
    try:
        cls = hub.progress_callback(*callbacks) if callbacks else None
        path = hub.snapshot(
            p.model_id,
            p.revision,
            cache=p.cache,
            local_dir=p.target,
            offline=False,
            endpoint=settings.modelscope_endpoint,
            callbacks=[cls] if cls else None,
        )
    except Exception as err:  # ModelScope raises many types (HTTPError, NetworkError, FileDownloadError...)
        raise UserError(_download_error(p, err)) from None
    return Outcome(p, path, "ModelScope", verify_model_dir(path), notes)


def _from_cache(p: Plan, why: str) -> Path:
    """Resolve the model from the cache through ModelScope's own offline path (local_files_only)."""
    ours = layout.cache_candidates(p.cache, p.model_id, p.revision)[0]
    attempts: list[Path | None] = [ours] if ours.is_dir() and any(ours.iterdir()) else []
    attempts.append(None)  # ModelScope's own layouts (legacy Org/Name___x, Org--Name/snapshots/REV)
    last = ""
    for local_dir in attempts:
        try:
            return hub.snapshot(p.model_id, p.revision, cache=p.cache, local_dir=local_dir, offline=True, endpoint="")
        except Exception as err:
            last = str(err).split("\n")[0]
    raise UserError(
        f"{p.model_id} (revision {p.revision}) cannot be downloaded ({why}) and is not in the cache "
        f"{p.cache} (ModelScope says: {last}). Either pre-seed the cache: copy the model folder to {ours} "
        "and run again, or point MODEL_ID at a local model folder in .env"
    )


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".ftk-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(
            f"MODELSCOPE_CACHE: cannot write to {folder} ({err.strerror}); fix its permissions or "
            "set MODELSCOPE_CACHE to a writable folder"
        ) from None


def _download_error(p: Plan, err: Exception) -> str:
    text = str(err).split("\n")[0][:300]
    name = type(err).__name__
    if "NotExist" in name or "404" in text or "not exist" in text.lower():
        return (
            f"MODEL_ID={p.model_id!r} revision {p.revision!r} was not found on ModelScope ({text}); "
            "check the id and MODEL_REVISION on modelscope.cn, or point MODEL_ID at a local folder"
        )
    return (
        f"downloading {p.model_id} failed: {name}: {text}. Files already fetched are kept in {p.target}: run "
        "again to resume; raise DOWNLOAD_TIMEOUT / DOWNLOAD_MAX_RETRIES on a slow link"
    )
