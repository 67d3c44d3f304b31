"""Merge-stage checks: an adapter trained on this base, and room for the export next to its target."""

from __future__ import annotations

from ftk import host
from ftk.console import UserError
from ftk.doctor import resources
from ftk.doctor.registry import Result, check, failed, passed
from ftk.merge import base_check
from ftk.settings import Settings

EXPORT_SLACK_MIB = 64  # configs, tokenizer and the index besides the weights


@check("adapter", stage="merge", order=20)
def adapter_fits_base(s: Settings) -> list[Result]:
    adapter, base = s.resolved_adapter_path, s.base_model_path
    if not (adapter / "adapter_config.json").is_file():
        return [
            failed(
                f"{adapter}/adapter_config.json not found: no adapter there",
                "train one (scripts/train.sh) or set ADAPTER_PATH (or RUN_ID)",
            )
        ]
    if not (base / "config.json").is_file():
        return []  # the base model check already failed, naming the download stage
    try:
        notes = base_check.check(adapter.resolve(), base.resolve())
    except UserError as err:
        return [failed(str(err), "")]  # the message names the fix
    return [passed(f"{adapter} belongs to {base}"), *(passed(note, "base") for note in notes)]


@check("output folder", stage="merge", order=30)
def output_folder(s: Settings) -> Result:
    return resources.writable("MERGED_MODEL_PATH", s.resolved_merged_path.parent)


@check("disk", stage="merge", order=40)
def export_disk(s: Settings) -> Result:
    """The export and the kept previous version, each about the base's size."""
    base = s.base_model_path
    need = (host.folder_mib(base) if base.is_dir() else 0) * 2 + EXPORT_SLACK_MIB
    return resources.disk("MERGED_MODEL_PATH", s.resolved_merged_path.parent, need)
