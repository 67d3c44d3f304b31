"""The phases of scripts/gpu-check.sh: each step runs the project's own scripts as a user would, records what
it measured, and a failed step is reported and the run goes on (a GPU hour shows every failure at once).

train     data sets; a random text model; bf16 LoRA through scripts/train.sh vs plain `llamafactory-cli train`
          of the same config, after an unmeasured warm-up (tokens/s, peak GPU memory); 4-bit QLoRA;
          scripts/merge.sh (`ftk merge verify`); the Qwen3-VL recipe, its merge, and the merged model and the base
          with the adapter served through scripts/serve.sh (`ftk smoke` with an image) on a tiny random Qwen3-VL
serve     the merged model and base + 4 LoRA adapters through scripts/serve.sh: `ftk smoke`, `vllm bench serve`
          at each concurrency, batch-1 decode against the memory bandwidth, `ftk plan serve` against vLLM's KV cache
variants  fp8 KV cache vs auto, CUDA graphs vs --enforce-eager, MAX_NUM_SEQS 32 vs 256, MAX_LORAS 1 vs 4
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk import paths
from ftk.gpucheck import host, vllm_bench
from ftk.gpucheck.report import NOT_STARTED, SKIPPED, Check, Comparison, Report, Step, decode_limit, kv_check
from ftk.hf.random_lora import random_adapter
from ftk.serve.client import ServerError, VllmClient, read_key
from ftk.serve.command import launcher_argv, serve_python
from ftk.serve.served import Served
from ftk.settings import load_settings

PHASES = ("train", "serve", "variants")
WARMUP_STEPS = 3
VL_SERVE = {"LIMIT_MM_PER_PROMPT": '{"image":1,"video":0}', "VLLM_ENFORCE_EAGER": "true", "MAX_MODEL_LEN": "2048"}
TRAIN_SETS = ("save_steps=100000", "logging_steps=5", "flash_attn=sdpa", "report_to=none")


def median_figures(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each figure's median over repeated runs (a shared GPU host varies by a fifth from one run to the next)."""
    keys = {k for run in runs for k in run}
    out: dict[str, float | None] = {}
    for key in keys:
        values = [float(v) for run in runs if isinstance(v := run.get(key), int | float)]
        out[key] = statistics.median(values) if values else None
    return out


class StepFailed(RuntimeError):
    """A step that cannot go on; the message says why and where the log is."""


def tool(venv: str, name: str) -> str:
    """A tool of the project's venvs (FTK_VENVS), else on PATH (containers), as scripts/lib/common.sh finds them."""
    path = paths.venv_bin(venv, name)
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise StepFailed(f"{name} not found in {path.parent} nor on PATH; run make setup (or use the images)")
    return found


@dataclass
class Options:
    work: Path
    report: Path
    phases: tuple[str, ...] = PHASES
    size: str = "1b"
    steps: int = 20
    concurrency: tuple[int, ...] = (1, 16, 64)
    input_len: int = 512
    output_len: int = 128
    deadline: float = 0.0  # monotonic time after which no new step starts (0: none)
    vl: bool = True
    skip: tuple[str, ...] = ()  # steps whose name contains one of these words are left out (a time-boxed host)
    train_repeats: int = 1  # plain and scripts/train.sh alternated this many times; the table shows medians


@dataclass
class Runner:
    opts: Options
    report: Report = field(default_factory=Report)

    def __post_init__(self) -> None:
        w = self.opts.work
        self.data, self.models, self.runs, self.logs = w / "data", w / "models", w / "runs", w / "logs"
        for d in (self.data, self.models, self.runs, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.home = paths.project_home()
        self.text_model = self.models / f"text-{self.opts.size}"
        self.vl_model = self.models / "tiny-qwen3vl"
        self.merged = self.models / "merged" / "text-lora"
        self.adapter = self.runs / "text-lora" / "adapter"

    # --- plumbing ------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FTK_ENV_FILE"))}
        env.update(
            FTK_HOME=str(self.home),
            FTK_ENV_FILE=str(self.opts.work / "gpu-check.env"),  # absent: only these values and the defaults
            RUNS_DIR=str(self.runs),
            MODELS_DIR=str(self.models),
            DATASET_DIR=str(self.data),
            MEDIA_ROOT=str(self.data),
            NO_COLOR="1",
            # FTK_GPU_CHECK_ALLOW_CPU=true: the CPU tests drive these same steps on a CPU host (no GPU figures)
            ALLOW_CPU=os.environ.get("FTK_GPU_CHECK_ALLOW_CPU", "false"),
            TRAIN_GPUS="0" if os.environ.get("FTK_GPU_CHECK_ALLOW_CPU") == "true" else "1",
        )
        env.update(extra)
        return env

    def sh(self, argv: list[str], log: str, timeout: float = 600, **env: str) -> str:
        """Run a command with its output appended to logs/LOG; its stdout is returned; failure raises StepFailed."""
        path = self.logs / f"{log}.log"
        with path.open("ab") as f:
            f.write(f"\n$ {' '.join(argv)}\n".encode())
            f.flush()
            try:
                r = subprocess.run(
                    argv, stdout=subprocess.PIPE, stderr=f, env=self.env(**env), timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise StepFailed(f"{Path(argv[0]).name} ran past {timeout:.0f}s; see {path}") from None
            f.write(r.stdout)
        if r.returncode != 0:
            tail = path.read_text(errors="replace").strip().splitlines()[-1:]
            raise StepFailed(f"{Path(argv[0]).name} exit {r.returncode}; see {path}: {' '.join(tail)[-300:]}")
        return r.stdout.decode(errors="replace")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict[str, str]]:
        """Record one step; its failure is recorded (with the reason) and the run goes on."""
        word = next((w for w in self.opts.skip if w in name), None)
        if word is not None:  # before the deadline: a step left out on purpose is no failure
            self.report.record(Step(name, True, 0.0, f"{SKIPPED}--skip {word}"))
            self.save()
            yield {"skip": "asked"}
            return
        if self.opts.deadline and time.monotonic() > self.opts.deadline:
            self.report.record(Step(name, False, 0.0, f"{NOT_STARTED}--deadline reached"))
            self.save()
            yield {"skip": "deadline"}
            return
        print(f"[step] {name}", flush=True)
        detail: dict[str, str] = {}
        start = time.monotonic()
        ok = True
        try:
            yield detail
        except (Exception, SystemExit) as err:  # every failure is a row of the report
            ok = False
            detail["error"] = str(err) or type(err).__name__
            with (self.logs / "gpu-check-errors.log").open("a") as f:
                f.write(f"--- {name}\n{traceback.format_exc()}\n")
        seconds = time.monotonic() - start
        text = detail.get("error") or detail.get("detail", "")
        self.report.record(Step(name, ok, round(seconds, 1), text))
        print(f"[{'ok' if ok else 'FAILED'}] {name} ({seconds:.0f}s) {text}", flush=True)
        self.save()

    def save(self) -> None:
        self.report.write(self.opts.report)

    def skipped(self, detail: dict[str, str]) -> bool:
        return "skip" in detail

    # --- phases --------------------------------------------------------------------------------------
    def run(self) -> Report:
        if self.opts.report.is_file():  # a later phase adds to the report of the earlier ones
            with contextlib.suppress(ValueError, KeyError, OSError):
                self.report = Report.load(self.opts.report)
        self.report.host = host.host_info()
        self.report.settings.update(
            {"size": self.opts.size, "train_steps": self.opts.steps, "concurrency": list(self.opts.concurrency)}
        )
        with self.step("versions") as d:
            if not self.skipped(d):
                self.report.versions["train"] = host.versions_of(tool("train", "python"))
                self.report.versions["serve"] = host.versions_of(self.serve_python())
                d["detail"] = ", ".join(f"{k} {v}" for k, v in self.report.versions["train"].items())
        for phase in self.opts.phases:
            getattr(self, f"phase_{phase}")()
        return self.report

    def serve_python(self) -> str:
        return serve_python(load_settings(Path("/nonexistent")))

    def ensure_data(self) -> None:
        info = self.data / "dataset_info.json"
        names = json.loads(info.read_text()).keys() if info.is_file() else []
        ftk = tool("toolkit", "ftk")
        for file, name in (("identity.json", "identity"), ("shapes.jsonl", "shapes")):
            if name not in names:
                self.sh(
                    [ftk, "dataset", "register", str(self.home / "data" / file), "--name", name,
                     "--dataset-dir", str(self.data)],
                    "data",
                )  # fmt: skip

    def ensure_text_model(self) -> None:
        if (self.text_model / "ftk-random-model.json").is_file():
            return
        py = tool("train", "python")
        self.sh([py, "-m", "ftk.gpucheck.random_text", str(self.text_model), "--size", self.opts.size], "models")

    def text_env(self, run_id: str, **extra: str) -> dict[str, str]:
        return {
            "MODEL_ID": str(self.text_model),
            "TRAIN_RECIPE": "configs/train/text_lora_sft.yaml",
            "TEMPLATE": "qwen",
            "DATASETS": "identity",
            "RUN_ID": run_id,
            **extra,
        }

    def train_sets(self, steps: int = 0) -> list[str]:
        sets = [f"max_steps={steps or self.opts.steps}", *TRAIN_SETS]
        return [x for s in sets for x in ("--set", s)]

    def trained(self, run_dir: Path) -> dict[str, float]:
        path = run_dir / "adapter" / "train_results.json"
        if not path.is_file():
            raise StepFailed(f"no {path}: training wrote no results")
        return json.loads(path.read_text())

    def train_plain(self, run_id: str, steps: int = 0) -> Path:
        """The recipe's config rendered by ftk, trained by a plain `llamafactory-cli train` (the reference and the
        warm-up); the run folder."""
        env = self.text_env(run_id)
        shutil.rmtree(self.runs / run_id, ignore_errors=True)
        sets = self.train_sets(steps)
        self.sh([tool("toolkit", "ftk"), "config", "render", "train", "--run-id", run_id, *sets], "train", **env)
        log = f"train-{run_id.removeprefix('text-')}"
        self.sh([tool("train", "llamafactory-cli"), "train", str(self.runs / run_id / "train.yaml")], log, **env)
        return self.runs / run_id

    def measured_plain(self) -> dict[str, float | None]:
        with host.GpuMemoryPeak() as peak:
            run = self.train_plain("text-plain")
        return {**self.trained(run), "peak": peak.peak_mib}

    def train_wrapper(self, run_id: str, **extra: str) -> dict[str, float | None]:
        """The same through scripts/train.sh (preflight, drift check, the logged subprocess, the manifest)."""
        env = self.text_env(run_id, **extra)
        with host.GpuMemoryPeak() as peak:
            train_sh = str(self.home / "scripts" / "train.sh")
            self.sh([train_sh, "--overwrite", *self.train_sets()], f"train-{run_id}", timeout=900, **env)
        return {**self.trained(self.runs / run_id), "peak": peak.peak_mib}

    def phase_train(self) -> None:
        with self.step("train: data sets and a random text model") as d:
            if not self.skipped(d):
                self.ensure_data()
                self.ensure_text_model()
                meta = json.loads((self.text_model / "ftk-random-model.json").read_text())
                d["detail"] = f"{self.text_model.name}: {meta['parameters'] / 1e9:.2f}B parameters, bf16"
        # The first training run on a fresh host pays for the CUDA context, kernel selection and the data set's
        # cache: measured first, plain looked 1.21x slower than the same config through scripts/train.sh.
        with self.step(f"train: warm-up, plain llamafactory-cli train ({WARMUP_STEPS} steps, not measured)") as d:
            if not self.skipped(d):
                self.train_plain("text-warmup", WARMUP_STEPS)
        runs: dict[str, list[dict[str, float | None]]] = {"plain": [], "wrapper": []}
        for rep in range(1, self.opts.train_repeats + 1):
            of = f", run {rep} of {self.opts.train_repeats}" if self.opts.train_repeats > 1 else ""
            with self.step(f"train: plain llamafactory-cli train (bf16 LoRA, SDPA{of})") as d:
                if not self.skipped(d):
                    runs["plain"].append(self.measured_plain())
                    d["detail"] = f"{runs['plain'][-1].get('effective_tokens_per_sec', 0):.0f} tokens/s"
            with self.step(f"train: scripts/train.sh (bf16 LoRA, SDPA{of})") as d:
                if not self.skipped(d):
                    runs["wrapper"].append(self.train_wrapper("text-lora"))
                    d["detail"] = f"{runs['wrapper'][-1].get('effective_tokens_per_sec', 0):.0f} tokens/s"
        figures = {label: median_figures(got) for label, got in runs.items() if got}
        with self.step("train: scripts/train.sh (4-bit QLoRA, bitsandbytes)") as d:
            if not self.skipped(d):
                figures["qlora"] = self.train_wrapper("text-qlora", QUANTIZATION_BIT="4")
                d["detail"] = f"{figures['qlora'].get('effective_tokens_per_sec', 0):.0f} tokens/s"
        rows = (
            ("training tokens/s", "effective_tokens_per_sec"),
            ("train_runtime (s)", "train_runtime"),
            ("peak GPU memory (MiB)", "peak"),
            ("final train loss", "train_loss"),
        )
        if "plain" in figures or "wrapper" in figures:
            comp = Comparison(
                "train: plain llamafactory-cli vs scripts/train.sh (same config, bf16 LoRA)",
                ["plain", "scripts/train.sh"],
                note=f"{self.opts.steps} steps each, after a warm-up run; "
                + (
                    f"median of {self.opts.train_repeats} alternated runs each"
                    if self.opts.train_repeats > 1
                    else "one run each, plain first"
                ),
            )
            for measure, key in rows:
                comp.add(measure, figures.get("plain", {}).get(key), figures.get("wrapper", {}).get(key))
            self.report.put(comp)
        if "wrapper" in figures or "qlora" in figures:
            comp = Comparison("train: bf16 LoRA vs 4-bit QLoRA (scripts/train.sh)", ["bf16 LoRA", "QLoRA 4-bit"])
            for measure, key in rows:
                comp.add(measure, figures.get("wrapper", {}).get(key), figures.get("qlora", {}).get(key))
            self.report.put(comp)
        with self.step("merge: scripts/merge.sh (export, ftk merge verify on the GPU)") as d:
            if not self.skipped(d):
                env = self.text_env("text-lora", EXPORT_DEVICE="auto")
                self.sh([str(self.home / "scripts" / "merge.sh")], "merge-text-lora", timeout=900, **env)
                d["detail"] = f"merged into {self.merged}"
        if self.opts.vl:
            self.vl_steps()

    def vl_steps(self) -> None:
        vl_env = {
            "MODEL_ID": str(self.vl_model),
            "TRAIN_RECIPE": "configs/train/qwen3vl_lora_sft.yaml",
            "MERGE_RECIPE": "configs/merge/qwen3vl_merge.yaml",
            "DATASETS": "shapes",
            "RUN_ID": "vl-lora",
            "EXPORT_DEVICE": "auto",
        }
        with self.step("train: Qwen3-VL recipe on a tiny random Qwen3-VL") as d:
            if not self.skipped(d):
                self.ensure_data()
                self.sh([tool("train", "ftk"), "tiny-vl", "build", str(self.vl_model), "--quiet"], "models")
                train_sh = str(self.home / "scripts" / "train.sh")
                self.sh([train_sh, "--overwrite", *self.train_sets()], "train-vl-lora", timeout=900, **vl_env)
                d["detail"] = f"{self.trained(self.runs / 'vl-lora').get('train_loss', 0):.3f} final loss"
        with self.step("merge: Qwen3-VL adapter (scripts/merge.sh)") as d:
            if not self.skipped(d):
                self.sh([str(self.home / "scripts" / "merge.sh")], "merge-vl-lora", timeout=900, **vl_env)
        merged = self.models / "merged" / "vl-lora"
        adapter = self.runs / "vl-lora" / "adapter"
        for label, model, lora in (("vl-merged", merged, False), ("vl-lora", self.vl_model, True)):
            what = "base + the adapter" if lora else "the merged model"
            with self.step(f"serve: Qwen3-VL, {what} (scripts/serve.sh, eager), ftk smoke with an image") as d:
                if not self.skipped(d):
                    env = {**VL_SERVE, "MODEL_ID": str(self.vl_model), "SERVE_MODEL_PATH": str(model)}
                    env["LORA_MODULES"] = f"shapes={adapter}" if lora else ""
                    target = self.served(label, model, name="base" if lora else label, **env)
                    try:
                        self.start(target)
                        self._smoke(target, ["base"] if lora else [label], ["shapes"] if lora else [], model)
                        d["detail"] = f"healthy in {target.startup:.0f}s; smoke passed (image included)"
                    finally:
                        self.stop(target)

    # --- serving -------------------------------------------------------------------------------------
    def serve_inputs(self) -> tuple[Path, Path, list[str]]:
        """(merged model, base model, notes): the trained ones, else the base and a random adapter stand in."""
        self.ensure_text_model()
        notes = []
        merged = self.merged if (self.merged / "config.json").is_file() else self.text_model
        if merged == self.text_model:
            notes.append("no merged model: the base stands in (same shapes)")
        adapters_dir = self.opts.work / "adapters"
        if not (self.adapter / "adapter_config.json").is_file():
            random_adapter(self.text_model, adapters_dir / "a1", r=8)
            self.adapter = adapters_dir / "a1"
            notes.append("no trained adapter: a random r=8 one")
        for i in (2, 3, 4):
            if not (adapters_dir / f"a{i}" / "adapter_config.json").is_file():
                random_adapter(self.text_model, adapters_dir / f"a{i}", r=8)
        return merged, self.text_model, notes

    def served(self, label: str, model: Path, lora: bool = False, name: str = "", **extra: str) -> Served:
        name = name or ("base" if lora else "merged")
        env = self.env(
            SERVE_MODEL_PATH=str(model),
            MODEL_ID=str(self.text_model),
            SERVED_MODEL_NAME=name,
            MAX_NUM_SEQS="256",
            LORA_MODULES=" ".join(
                f"a{i}={self.adapter if i == 1 else self.opts.work / 'adapters' / f'a{i}'}" for i in (1, 2, 3, 4)
            )
            if lora
            else "",
        )
        env.update(extra)
        for key in ("VLLM_PORT", "VLLM_HOST", "VLLM_API_KEY_FILE"):  # Served picks a free port and its key file
            env.pop(key, None)
        work = self.opts.work / "serve" / label
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return Served(label, "a1" if lora else name, env, work)

    def bench(
        self, target: Served, concurrency: int, tag: str, lora: list[str] | None = None
    ) -> vllm_bench.BenchResult:
        prompts = max(16, 6 * concurrency)
        launcher = launcher_argv(load_settings(Path("/nonexistent")))
        result = vllm_bench.run(
            launcher,
            target.url,
            read_key(target.key_file),
            "merged" if target.model_name == "merged" else (lora[0] if lora else target.model_name),
            self.text_model,
            concurrency,
            prompts,
            self.opts.work / "bench" / f"{target.label}-{tag}-c{concurrency}.json",
            self.logs / f"bench-{target.label}.log",
            self.opts.input_len,
            self.opts.output_len,
            lora=lora,
        )
        for attr in ("output_tokens_per_s", "ttft_median_ms", "tpot_median_ms", "requests_per_s"):
            self.report.figures[f"bench: {target.label}/{tag} @ {concurrency} | {attr}"] = getattr(result, attr)
        self.save()
        return result

    def measured(self, label: str, tag: str, c: int, attr: str) -> float | None:
        value = self.report.figures.get(f"bench: {label}/{tag} @ {c} | {attr}")
        return float(value) if isinstance(value, (int, float)) else None

    def plan_tokens(self, model: Path, **extra: str) -> int | None:
        out = self.sh(
            [tool("toolkit", "ftk"), "plan", "serve", "--json", "--model", str(model), "--gpus", "1"],
            "plan",
            MAX_NUM_SEQS="256",
            **extra,
        )
        plan = json.loads(out[out.index("{") :])
        return next(o["tokens"] for o in plan["options"] if o["tp"] == 1)

    def reuse(self, label: str, c: int) -> vllm_bench.BenchResult:
        get = lambda attr: self.measured(label, "one", c, attr) or 0.0  # noqa: E731
        return vllm_bench.BenchResult(c, 0, get("output_tokens_per_s"), get("requests_per_s"),
                                      get("ttft_median_ms"), get("ttft_median_ms"), get("tpot_median_ms"))  # fmt: skip

    def smoke(self, target: Served, lora: bool) -> None:
        """`ftk smoke` against the server, recorded as a check (a failure does not stop the benchmarks)."""
        models, adapters = (["base"], [f"a{i}" for i in (1, 2, 3, 4)]) if lora else (["merged"], [])
        try:
            self._smoke(target, models, adapters, self.text_model)
            self.report.check(Check(f"ftk smoke ({target.label})", True, "passed"))
        except StepFailed as err:
            self.report.check(Check(f"ftk smoke ({target.label})", False, str(err)))

    def _smoke(self, target: Served, models: list[str], adapters: list[str], model: Path) -> None:
        """`ftk smoke` on the server; SERVE_MODEL_PATH tells it whether the model takes images."""
        argv = [tool("toolkit", "ftk"), "smoke", "--base-url", target.url + "/v1"]
        argv += ["--api-key-file", str(target.key_file), "--expect", ""]
        argv += [x for m in models for x in ("--model", m)] + [x for a in adapters for x in ("--adapter", a)]
        self.sh(argv, f"smoke-{target.label}", timeout=300, SERVE_MODEL_PATH=str(model))

    def start(self, target: Served) -> None:
        self.wait_gpu_free()
        target.start(900)
        self.warm(target)
        self.report.figures[f"serve: start-up to healthy (s) | {target.label}"] = round(target.startup, 1)
        kv = vllm_bench.kv_cache_tokens(target.work / f"{target.label}.log")
        self.report.figures[f"serve: vLLM KV-cache tokens | {target.label}"] = kv

    def warm(self, target: Served) -> None:
        """One short completion per model the server lists, before any benchmark: the first request to an adapter
        loads it onto the GPU, and a benchmark of 16 requests at concurrency 1 counted that (LoRA looked 0.63x of
        the merged model's tokens/s on an H100 with the same TPOT)."""
        client = VllmClient(target.url, read_key(target.key_file), timeout=300)
        try:
            for model in client.model_ids():
                client.complete(model, "Warm-up.", 8)
        except ServerError as err:
            raise StepFailed(f"{target.label}: warm-up request failed: {err}") from None

    def stop(self, target: Served) -> None:
        target.stop()
        log = target.work / f"{target.label}.log"
        if log.is_file():
            shutil.copy(log, self.logs / f"vllm-{target.label}.log")

    def wait_gpu_free(self, timeout: float = 60) -> None:
        """vLLM's engine process frees its memory a moment after the API server exits: wait for it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            used = sum(int(float(g.get("memory.used", "0") or 0)) for g in host.nvidia_smi(["memory.used"]))
            if used < 2048:
                return
            time.sleep(1)

    def phase_serve(self) -> None:
        results: dict[tuple[str, int], Any] = {}
        merged = None
        with self.step("serve: inputs (merged model, adapters)") as d:
            if not self.skipped(d):
                merged, _, notes = self.serve_inputs()
                d["detail"] = "; ".join(notes) or "trained adapter + 3 random r=8 adapters, merged model"
        if merged is None:
            return
        predicted = None
        with self.step("serve: ftk plan serve (KV-cache prediction)") as d:
            if not self.skipped(d):
                predicted = self.plan_tokens(merged)
                d["detail"] = f"{predicted:,} tokens predicted"
        for label, lora in (("merged", False), ("lora", True)):
            target = self.served(label, merged if not lora else self.text_model, lora=lora)
            with self.step(f"serve: scripts/serve.sh {label} (CUDA graphs), ftk smoke") as d:
                if self.skipped(d):
                    continue
                if not lora and all(
                    self.measured("graphs", "one", c, "output_tokens_per_s") is not None for c in self.opts.concurrency
                ):
                    for c in self.opts.concurrency:  # the variants phase measured this very server already
                        results[(label, c)] = self.reuse("graphs", c)
                    d["detail"] = "figures of the CUDA-graphs reference server of this run"
                    continue
                try:
                    self.start(target)
                    for c in self.opts.concurrency:
                        results[(label, c)] = self.bench(target, c, "one", ["a1"] if lora else None)
                    if lora:
                        results[("lora4", max(self.opts.concurrency))] = self.bench(
                            target, max(self.opts.concurrency), "four", ["a1", "a2", "a3", "a4"]
                        )
                    d["detail"] = f"healthy in {target.startup:.0f}s"
                    self.smoke(target, lora)
                finally:
                    self.stop(target)
            if label == "merged":
                reported = self.report.figures.get("serve: vLLM KV-cache tokens | merged")
                self.report.check(kv_check(predicted, reported if isinstance(reported, int) else None))
        comp = Comparison(
            "serve: merged model vs base + LoRA (vllm bench serve)",
            ["merged", "base + LoRA"],
            note=f"random {self.opts.input_len} in / {self.opts.output_len} out, --ignore-eos; one adapter "
            "per request unless said",
        )
        for c in self.opts.concurrency:
            m, lo = results.get(("merged", c)), results.get(("lora", c))
            comp.add(f"output tokens/s @ {c}", *(r.output_tokens_per_s if r else None for r in (m, lo)))
            comp.add(f"TTFT median ms @ {c}", *(r.ttft_median_ms if r else None for r in (m, lo)))
            comp.add(f"TPOT median ms @ {c}", *(r.tpot_median_ms if r else None for r in (m, lo)))
        top = max(self.opts.concurrency)
        four = results.get(("lora4", top))
        m = results.get(("merged", top))
        comp.add(f"output tokens/s @ {top}, 4 adapters in the batch", m.output_tokens_per_s if m else None,
                 four.output_tokens_per_s if four else None)  # fmt: skip
        comp.add(f"TTFT median ms @ {top}, 4 adapters in the batch", m.ttft_median_ms if m else None,
                 four.ttft_median_ms if four else None)  # fmt: skip
        self.report.put(comp)
        with self.step("serve: batch-1 decode vs the memory bandwidth") as d:
            if not self.skipped(d):
                one = results.get(("merged", min(self.opts.concurrency)))
                if one is None:
                    raise StepFailed("no batch-1 figure (the merged benchmark failed)")
                bw = json.loads(self.sh([tool("train", "python"), "-m", "ftk.gpucheck.host", "bandwidth"], "bw"))
                weights = sum(p.stat().st_size for p in merged.glob("*.safetensors"))
                limit = decode_limit(weights, bw["bandwidth_bytes_per_s"])
                comp = Comparison(
                    "serve: batch-1 decode (merged) vs the bandwidth limit",
                    ["measured", "bandwidth limit"],
                    note=f"limit = measured copy bandwidth {bw['bandwidth_bytes_per_s'] / 1e12:.2f} TB/s / "
                    f"{weights / 1e9:.2f} GB of weights read per token",
                )
                comp.add("decode tokens/s (1000 / TPOT)", one.batch1_tokens_per_s, limit)
                comp.add("ms per token", one.tpot_median_ms, 1000 / limit)
                self.report.put(comp)
                d["detail"] = (
                    f"{one.batch1_tokens_per_s:.0f} of {limit:.0f} tokens/s ({one.batch1_tokens_per_s / limit:.0%})"
                )

    def phase_variants(self) -> None:
        merged = None
        with self.step("variants: inputs") as d:
            if not self.skipped(d):
                merged, _, notes = self.serve_inputs()
                d["detail"] = "; ".join(notes) or "the merged model"
        if merged is None:
            return
        low, top = min(self.opts.concurrency), max(self.opts.concurrency)
        mid = sorted(self.opts.concurrency)[len(self.opts.concurrency) // 2]
        base = "merged"  # the serve phase's merged server: CUDA graphs, KV auto, MAX_NUM_SEQS 256
        if any(self.measured("merged", "one", c, "output_tokens_per_s") is None for c in (low, mid, top)):
            base = "graphs"  # that phase did not run (or failed): measure the reference here
        variants: list[tuple[str, dict[str, str], tuple[int, ...]]] = [
            ("fp8", {"KV_CACHE_DTYPE": "fp8"}, (top,)),
            ("eager", {"VLLM_ENFORCE_EAGER": "true"}, (low, mid)),
            ("seqs32", {"MAX_NUM_SEQS": "32"}, (top,)),
        ]
        if base == "graphs":
            variants.insert(0, ("graphs", {}, (low, mid, top)))
        # last, so a deadline drops it first: what MAX_LORAS costs a batch of one adapter (the serve phase's
        # LoRA server has MAX_LORAS=4 and four adapters)
        variants.append(("lora-max1", {"MAX_LORAS": "1"}, (low, top)))
        for label, extra, levels in variants:
            lora = label.startswith("lora")
            target = self.served(label, self.text_model if lora else merged, lora=lora, **extra)
            settings = " ".join(f"{k}={v}" for k, v in extra.items()) or "the reference"
            with self.step(f"variants: merged model, {settings}") as d:
                if self.skipped(d):
                    continue
                try:
                    self.start(target)
                    for c in levels:
                        self.bench(target, c, "one", ["a1"] if lora else None)
                    d["detail"] = f"healthy in {target.startup:.0f}s"
                finally:
                    self.stop(target)
            if label == "fp8":
                with self.step("variants: ftk plan serve KV-cache prediction with KV_CACHE_DTYPE=fp8") as d:
                    if not self.skipped(d):
                        predicted = self.plan_tokens(merged, KV_CACHE_DTYPE="fp8")
                        reported = self.report.figures.get("serve: vLLM KV-cache tokens | fp8")
                        check = kv_check(predicted, reported if isinstance(reported, int) else None)
                        check.name += " (fp8 KV cache)"
                        self.report.check(check)
                        d["detail"] = check.detail

        def get(label: str, c: int, attr: str) -> float | None:
            return self.measured(base if label == "ref" else label, "one", c, attr)

        fig = self.report.figures
        comp = Comparison("variants: KV_CACHE_DTYPE auto vs fp8 (merged)", ["auto", "fp8"])
        comp.add("KV-cache tokens (vLLM)", fig.get(f"serve: vLLM KV-cache tokens | {base}"),
                 fig.get("serve: vLLM KV-cache tokens | fp8"))  # fmt: skip
        for attr, name in (("output_tokens_per_s", "output tokens/s"), ("tpot_median_ms", "TPOT median ms")):
            comp.add(f"{name} @ {top}", get("ref", top, attr), get("fp8", top, attr))
        self.report.put(comp)
        comp = Comparison("variants: --enforce-eager vs CUDA graphs (merged)", ["eager", "CUDA graphs"])
        for c in (low, mid):
            for attr, name in (("output_tokens_per_s", "output tokens/s"), ("tpot_median_ms", "TPOT median ms")):
                comp.add(f"{name} @ {c}", get("eager", c, attr), get("ref", c, attr))
        comp.add("start-up to healthy (s)", fig.get("serve: start-up to healthy (s) | eager"),
                 fig.get(f"serve: start-up to healthy (s) | {base}"))  # fmt: skip
        self.report.put(comp)
        comp = Comparison("variants: MAX_NUM_SEQS 32 vs 256 (merged)", ["32", "256"])
        for attr, name in (("output_tokens_per_s", "output tokens/s"), ("ttft_median_ms", "TTFT median ms")):
            comp.add(f"{name} @ {top}", get("seqs32", top, attr), get("ref", top, attr))
        self.report.put(comp)
        comp = Comparison("variants: base + LoRA, MAX_LORAS 1 vs 4 (one adapter a request)", ["1", "4"])
        for c in (low, top):
            for attr, name in (("output_tokens_per_s", "output tokens/s"), ("tpot_median_ms", "TPOT median ms")):
                comp.add(f"{name} @ {c}", get("lora-max1", c, attr), get("lora", c, attr))
        self.report.put(comp)
        self.save()


__all__ = ["PHASES", "Options", "Runner", "StepFailed"]
