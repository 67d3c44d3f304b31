"""ModelScope, used through its own `snapshot_download`, made to fail fast when the hub cannot be reached.

ModelScope reads its retry and timeout knobs from the environment once, at import: `configure()` sets
them from the project's settings before the first import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://modelscope.cn"  # ModelScope's own default (modelscope_hub.constants)


def configure(*, cache: Path, max_retries: int, timeout: int, endpoint: str) -> None:
    """Map DOWNLOAD_MAX_RETRIES / DOWNLOAD_TIMEOUT / MODELSCOPE_* settings onto ModelScope's variables."""
    os.environ["MODELSCOPE_CACHE"] = str(cache)
    os.environ["MODELSCOPE_DOWNLOAD_MAX_RETRIES"] = str(max_retries)  # 0 allowed: no retry
    os.environ["MODELSCOPE_API_MAX_RETRIES"] = str(max(1, max_retries))  # must be positive
    os.environ["MODELSCOPE_API_TIMEOUT"] = str(timeout)
    os.environ["MODELSCOPE_DOWNLOAD_TIMEOUT"] = str(timeout)
    os.environ["MODELSCOPE_API_CONNECT_TIMEOUT"] = str(min(timeout, 10))
    if endpoint:
        os.environ["MODELSCOPE_ENDPOINT"] = endpoint


def probe(endpoint: str, timeout: float) -> str:
    """'' when something answers HTTP at `endpoint` within `timeout` seconds, else why not."""
    import httpx

    try:
        httpx.head(endpoint, timeout=httpx.Timeout(timeout), follow_redirects=False)
    except httpx.TimeoutException:
        return f"no answer within {timeout:g} s"
    except httpx.HTTPError as err:
        return str(err).split("\n")[0] or type(err).__name__
    return ""


def host_of(endpoint: str) -> str:
    return urlsplit(endpoint).netloc or endpoint


def progress_callback(
    start: Callable[[str, int], Any], advance: Callable[[Any, int], None], end: Callable[[Any], None]
) -> type:
    """A ModelScope ProgressCallback class (one instance per file) forwarding to our progress display."""
    from modelscope.hub.callback import ProgressCallback

    class _Forward(ProgressCallback):  # type: ignore[misc]
        def __init__(self, filename: str, file_size: int) -> None:
            super().__init__(filename, file_size)
            self._task = start(filename, file_size)

        def update(self, size: int) -> None:
            advance(self._task, size)

        def end(self) -> None:
            end(self._task)

    return _Forward


def snapshot(
    model_id: str,
    revision: str,
    *,
    cache: Path,
    local_dir: Path | None,
    offline: bool,
    endpoint: str,
    callbacks: list[type] | None = None,
) -> Path:
    """ModelScope's `snapshot_download`: into `local_dir` (or its cache layout), or resolve it offline."""
    from modelscope.hub.snapshot_download import snapshot_download

    path = snapshot_download(
        model_id,
        revision=revision or None,
        cache_dir=str(cache),
        local_dir=str(local_dir) if local_dir is not None else None,
        local_files_only=offline,
        endpoint=endpoint or None,
        progress_callbacks=callbacks,
    )
    return Path(path)
