"""LLaMA-Factory's own data loading as an oracle: what does it train on, drop or stop at? (train venv only)

    .venvs/train/bin/python -m ftk.dataset.lf_oracle CASES.json [--out RESULTS.json]

CASES.json is a list of {"name", "dataset_dir", "stage", "model", "template", "cutoff_len", "media_dir"?}: one
data set registered in `dataset_dir/dataset_info.json` each. Every case goes through LLaMA-Factory's
`get_dataset` (its parser, converter and the stage's processor: the same code `llamafactory-cli train` runs
before the first step) in this one process, and the result says, per case, `trained` (every sample became a
training row), `dropped` (fewer rows than samples: LLaMA-Factory skipped some, usually with only a warning) or
`raised` (it stopped, with the error). The agreement test compares these outcomes with `ftk dataset validate`,
and `scripts/bench.sh validate_vs_llamafactory` times the same pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# LLaMA-Factory's stage names -> the stage its data loader is called with (dpo/orpo load pairwise data as rm).
LOADER_STAGE = {"sft": "sft", "pt": "pt", "dpo": "rm", "rm": "rm", "kto": "kto"}


def count_samples(path: Path) -> int | None:
    """Samples in one data file as the `datasets` builders see them (None when it is not readable JSON)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".txt":
        return len(text.splitlines())
    try:
        data = json.loads(text)
        return len(data) if isinstance(data, list) else 1
    except json.JSONDecodeError:
        lines = [x for x in text.splitlines() if x.strip()]
        return len(lines)


def case_samples(case: dict[str, Any]) -> int | None:
    info = json.loads((Path(case["dataset_dir"]) / "dataset_info.json").read_text(encoding="utf-8"))
    target = Path(case["dataset_dir"]) / info[case["name"]]["file_name"]
    files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
    counts = [count_samples(f) for f in files]
    return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


class Oracle:
    """Loads LLaMA-Factory once; tokenizers are cached per model folder."""

    def __init__(self, workdir: Path) -> None:
        # LLaMA-Factory and its stack exist only in the train venv: imported here, not at module level, so the
        # toolkit venv can import ftk.dataset without them.
        from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
        from llamafactory.hparams import get_train_args
        from llamafactory.model import load_tokenizer

        self._get_dataset = get_dataset
        self._get_template = get_template_and_fix_tokenizer
        self._get_train_args = get_train_args
        self._load_tokenizer = load_tokenizer
        self.workdir = workdir
        self._tokenizers: dict[str, Any] = {}

    def run(self, case: dict[str, Any]) -> dict[str, Any]:
        stage = case.get("stage", "sft")
        args: dict[str, Any] = {
            "stage": stage,
            "do_train": True,
            "model_name_or_path": case["model"],
            "dataset": case["name"],
            "dataset_dir": case["dataset_dir"],
            "template": case.get("template", "smollm2"),
            "cutoff_len": case.get("cutoff_len", 1024),
            "finetuning_type": "lora",
            "output_dir": str(self.workdir / "out"),
            "overwrite_cache": True,
            "overwrite_output_dir": True,
            "report_to": "none",
            "preprocessing_num_workers": None,
        }
        if case.get("media_dir"):
            args["media_dir"] = case["media_dir"]
        if stage == "pt":
            args["packing"] = False  # one row per text, so rows can be counted against samples
        if stage == "dpo":
            args["pref_loss"] = case.get("pref_loss", "sigmoid")
        expected = case_samples(case)
        started = time.perf_counter()
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                model_args, data_args, training_args, *_ = self._get_train_args(args)
                key = str(model_args.model_name_or_path)
                if key not in self._tokenizers:
                    self._tokenizers[key] = self._load_tokenizer(model_args)
                module = self._tokenizers[key]
                template = self._get_template(module["tokenizer"], data_args)
                dataset = self._get_dataset(
                    template, model_args, data_args, training_args, stage=LOADER_STAGE[stage], **module
                )
            rows = len(dataset["train_dataset"])
        except BaseException as err:  # the oracle reports whatever LLaMA-Factory stops with
            if isinstance(err, KeyboardInterrupt):
                raise
            message = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"
            return {"name": case["name"], "outcome": "raised", "error": message, "samples": expected, "rows": 0}
        finally:
            seconds = time.perf_counter() - started
        outcome = "trained" if expected is not None and rows >= expected else "dropped"
        return {"name": case["name"], "outcome": outcome, "samples": expected, "rows": rows, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run LLaMA-Factory's data loading on each case of CASES.json.")
    parser.add_argument("cases", type=Path)
    parser.add_argument("--out", type=Path, help="write the results here (default: stdout)")
    ns = parser.parse_args(argv)
    cases = json.loads(ns.cases.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="ftk-lf-oracle-") as tmp:
        os.environ.setdefault("HF_DATASETS_CACHE", str(Path(tmp) / "datasets-cache"))
        oracle = Oracle(Path(tmp))
        results = [oracle.run(case) for case in cases]
    text = json.dumps(results, indent=2, ensure_ascii=False)
    if ns.out:
        ns.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
