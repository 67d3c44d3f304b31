"""The validator agrees with LLaMA-Factory's own data loader, case by case (issue 15, point 1).

Every case of `lf_corpus` (one per format and defect, written by the project) goes through LLaMA-Factory 0.9.5's
`get_dataset` in the train venv (one subprocess for the whole corpus: `ftk.dataset.lf_oracle`) and through
`ftk dataset validate`'s code with the same dataset_info.json entry and stage. LLaMA-Factory must do what the
case says it does (so the corpus stays true when LLaMA-Factory changes), and the validator must call exactly the
cases LLaMA-Factory trains on as they are valid. The image cases run with a tiny random Qwen2-VL (`ftk tiny-vl
build`) and its template, whose processor decodes every image as training does. The good text files are also
registered by `ftk dataset register` (entry inferred from the file alone), and LLaMA-Factory must train on every
sample through those entries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, clean_env, venv_bin
from ftk.dataset.formats import layout_from_entry
from ftk.dataset.problems import ProblemSink
from ftk.dataset.register import register
from ftk.dataset.validate import Options, validate_file
from lf_corpus import CASES, MM_CASES, write_corpus, write_media

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    folder = tmp_path_factory.mktemp("corpus")
    entries = write_corpus(folder)
    media = folder / "mm"
    entries |= write_corpus(media, MM_CASES)
    write_media(media)
    tiny = folder / "tiny-qwen2vl"
    build = [str(venv_bin("train", "python")), "-m", "ftk", "tiny-vl", "build", str(tiny), "--arch", "qwen2vl"]
    subprocess.run(build, capture_output=True, text=True, env=clean_env(), timeout=300, check=True)
    registered = folder / "registered"
    registered.mkdir()
    cases = [
        {"name": c.name, "dataset_dir": str(folder), "stage": c.stage, "model": str(MODEL), "cutoff_len": 256}
        for c in CASES
    ]
    cases += [
        {"name": c.name, "dataset_dir": str(media), "stage": c.stage, "model": str(tiny), "template": "qwen2_vl"}
        for c in MM_CASES
    ]
    for c in CASES:
        if c.expect == "trained":
            copy = registered / entries[c.name]["file_name"]
            shutil.copy(folder / entries[c.name]["file_name"], copy)
            reg = register(copy, c.name, registered, registered, False, ProblemSink(3), ("Ferret", "ftk"))
            assert reg.valid and reg.outcome == "added", (c.name, reg.reports[-1].problems)
            cases.append({**cases[CASES.index(c)], "dataset_dir": str(registered), "registered": True})
    spec, out = folder / "cases.json", folder / "lf.json"
    spec.write_text(json.dumps(cases), encoding="utf-8")
    env = clean_env(HF_DATASETS_CACHE=str(folder / ".hf-cache"), HF_HUB_OFFLINE="1")
    python = venv_bin("train", "python")
    proc = subprocess.run(
        [str(python), "-m", "ftk.dataset.lf_oracle", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    lf = {r["name"]: r for r, c in zip(results, cases, strict=True) if not c.get("registered")}
    lf_registered = {r["name"]: r for r, c in zip(results, cases, strict=True) if c.get("registered")}
    return folder, entries, lf, lf_registered


def case_folder(folder: Path, case_name: str) -> Path:
    return folder / "mm" if any(c.name == case_name for c in MM_CASES) else folder


def test_validator_agrees_with_llamafactory_on_every_case(corpus: tuple[Path, dict, dict, dict]) -> None:
    folder, entries, lf, _ = corpus
    wrong = []
    for case in CASES + MM_CASES:
        result = lf[case.name]
        lf_trains = result["outcome"] == "trained"
        if lf_trains != (case.expect in ("trained", "misread")):
            wrong.append(
                f"{case.name}: LLaMA-Factory {result['outcome']} ({result.get('error', '')}), "
                f"the corpus says {case.expect}"
            )
        sink = ProblemSink(3)
        entry = entries[case.name]
        where = case_folder(folder, case.name)
        report = validate_file(
            where / entry["file_name"],
            Options(media_root=where, stage=case.stage),
            sink,
            layout=layout_from_entry(entry),
        )
        if report.valid != (case.expect == "trained"):
            said = "; ".join(p.render() for p in sink.kept if p.severity == "error") or "valid"
            wrong.append(f"{case.name}: LLaMA-Factory {result['outcome']}, the validator says {said}")
    assert not wrong, "\n".join(wrong)


def test_registered_entries_train_every_sample(corpus: tuple[Path, dict, dict, dict]) -> None:
    folder, _, _, lf_registered = corpus
    info = json.loads((folder / "registered" / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(lf_registered) == {c.name for c in CASES if c.expect == "trained"}
    wrong = [
        f"{n}: {r['outcome']} {r.get('error', '')} with {info[n]}"
        for n, r in lf_registered.items()
        if r["outcome"] != "trained"
    ]
    assert not wrong, "\n".join(wrong)


def test_every_kind_of_data_is_in_the_corpus() -> None:
    assert not {c.name for c in CASES} & {c.name for c in MM_CASES}
    stages = {c.stage for c in CASES}
    assert {"sft", "dpo", "kto", "pt"} <= stages
    for expect in ("trained", "refused", "misread"):
        assert any(c.expect == expect for c in CASES)


# LLaMA-Factory's own demo sets (its repository's data/ folder, which stays out of this repository): set
# FTK_LF_DATA to a checkout's data/ folder to check them the same way (text sets; stage from their entries).
LF_DEMO_SETS = {
    "identity": "sft",
    "alpaca_en_demo": "sft",
    "alpaca_zh_demo": "sft",
    "glaive_toolcall_en_demo": "sft",
    "glaive_toolcall_zh_demo": "sft",
    "dpo_en_demo": "dpo",
    "dpo_zh_demo": "dpo",
    "kto_en_demo": "kto",
    "c4_demo": "pt",
    "wiki_demo": "pt",
}


@pytest.mark.skipif(not os.environ.get("FTK_LF_DATA"), reason="FTK_LF_DATA (LLaMA-Factory's data/ folder) not set")
def test_llamafactory_demo_sets_are_valid_and_train(tmp_path: Path) -> None:
    folder = Path(os.environ["FTK_LF_DATA"])
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    cases = [
        {"name": n, "dataset_dir": str(folder), "stage": st, "model": str(MODEL)} for n, st in LF_DEMO_SETS.items()
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    env = clean_env(HF_DATASETS_CACHE=str(tmp_path / ".hf-cache"), HF_HUB_OFFLINE="1")
    cmd = [str(venv_bin("train", "python")), "-m", "ftk.dataset.lf_oracle", str(tmp_path / "cases.json")]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "lf.json")], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wrong = []
    for r in json.loads((tmp_path / "lf.json").read_text(encoding="utf-8")):
        entry = info[r["name"]]
        report = validate_file(
            folder / entry["file_name"],
            Options(media_root=folder, stage=LF_DEMO_SETS[r["name"]]),
            ProblemSink(3),
            layout=layout_from_entry(entry),
        )
        if not report.valid or r["outcome"] != "trained":
            wrong.append(f"{r['name']}: validator valid={report.valid} {dict(report.problems)}, LLaMA-Factory {r}")
    assert not wrong, "\n".join(wrong)
