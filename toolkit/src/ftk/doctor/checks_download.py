"""Download-stage checks: the ModelScope cache can be written and has room for the model (a MODEL_ID that is a
local folder is only verified, so the cache is not needed then)."""

from __future__ import annotations

from ftk.doctor import resources
from ftk.doctor.registry import Result, check, passed
from ftk.download.stage import is_local
from ftk.settings import Settings


def _local(s: Settings) -> Result | None:
    if is_local(s.model_id):
        return passed(f"not needed: MODEL_ID={s.model_id} is a local folder (only verified)")
    return None


@check("cache folder", stage="download", order=10)
def cache_folder(s: Settings) -> Result:
    return _local(s) or resources.writable("MODELSCOPE_CACHE", s.path("modelscope_cache"))


@check("disk", stage="download", order=20)
def cache_disk(s: Settings) -> Result:
    return _local(s) or resources.disk("DOWNLOAD_MIN_FREE_MB", s.path("modelscope_cache"), s.download_min_free_mb)
