"""Model checks: the default model matches its manifest; the base model (MODEL_ID) is complete for train and merge."""

from __future__ import annotations

from ftk.console import UserError
from ftk.doctor.registry import Result, check, failed, passed, warned
from ftk.hf.folder import verify_model_dir
from ftk.model import smollm2 as default
from ftk.settings import Settings


@check("default model", stage="model")
def default_model(s: Settings) -> Result:
    folder = s.path("models_dir") / default.MODEL_NAME
    try:
        verdict = default.status(folder)
    except UserError as err:
        return failed(str(err), "run `make setup`")
    if verdict.ok:
        return passed(f"{folder} matches its manifest")
    more = f" (+{len(verdict.problems) - 1} more)" if len(verdict.problems) > 1 else ""
    return failed(f"{folder}: {verdict.problems[0]}{more}", "run `ftk model default` (rebuilds it)")


@check("base model", stage="train", order=10)
@check("base model", stage="merge", order=10)
def base_model(s: Settings) -> list[Result]:
    """The folder train and merge read (BASE_MODEL_PATH, from MODEL_ID): config, weights, tokenizer, template."""
    folder = s.base_model_path
    if not folder.is_dir():
        return [
            failed(
                f"model folder {folder} does not exist (MODEL_ID={s.model_id})",
                "run the download stage (scripts/download.sh, or docker compose --profile download up) or fix MODEL_ID",
            )
        ]
    findings = verify_model_dir(folder)
    bad = [f for f in findings if f.level == "fail"]
    if bad:
        return [failed(f"model folder {folder}: {f.what}: {f.detail}", f.fix, f.what) for f in bad]
    warns = [warned(f"{folder}: {f.detail}", f.fix, f.what) for f in findings if f.level == "warn"]
    return [passed(f"{folder} complete (config, weights, tokenizer, chat template)"), *warns]
