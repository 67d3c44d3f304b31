"""Where a ModelScope model lives in MODELSCOPE_CACHE. Light (no modelscope import): settings use it.

`ftk run download` writes to `<cache>/models/<Org>/<Name>` (given to ModelScope as `local_dir`), the layout a
user pre-seeds by hand. Folders that ModelScope's own tools made are found too: the pre-1.38 layout
(dots in the name spelled `___`) and the 1.38+ snapshot layout (`<Org>--<Name>/snapshots/<revision>`).
"""

from __future__ import annotations

import re
from pathlib import Path

MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub_id(model_id: str) -> bool:
    return bool(MODEL_ID_RE.match(model_id)) and ".." not in model_id


def cache_candidates(cache: Path, model_id: str, revision: str) -> list[Path]:
    """Folders of `model_id` in the cache, the one `ftk run download` writes first."""
    owner, name = model_id.split("/", 1)
    models = cache / "models"
    return [
        models / owner / name,
        models / owner / name.replace(".", "___"),
        models / f"{owner}--{name}" / "snapshots" / (revision or "master"),
    ]


def cached_model_dir(cache: Path, model_id: str, revision: str) -> Path:
    """The first candidate holding a config.json, else the folder `ftk run download` will write."""
    if not is_hub_id(model_id):
        return cache / "models" / model_id  # not a valid id: `ftk run download` says so, naming MODEL_ID
    candidates = cache_candidates(cache, model_id, revision)
    for folder in candidates:
        if (folder / "config.json").is_file():
            return folder
    return candidates[0]
