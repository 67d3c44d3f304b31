"""Validate whole data files: stream the samples, check each one, count every problem by kind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftk.dataset.dedup import SpillingDuplicateIndex, fingerprint
from ftk.dataset.formats import KIND_HELP, STAGE_KINDS, Format, Layout
from ftk.dataset.media import MediaChecker
from ftk.dataset.problems import WARNING_KINDS, Problem, ProblemSink
from ftk.dataset.readers import ParseIssue, iter_samples, iter_text_lines, sniff
from ftk.dataset.tokens import TokenCounter
from ftk.dataset.validators import SampleValidator

EXTENSIONS = (".json", ".jsonl", ".txt")  # .txt: one pre-training text per line, as LLaMA-Factory reads it
UNCHECKED = (".csv", ".parquet", ".arrow")  # LLaMA-Factory reads these too; the validator does not
PROGRESS_EVERY = 4096
TOKEN_BATCH = 2048  # samples rendered, then token-counted in one parallel encode_batch call
DUPLICATE_FIX = "remove the copy (duplicates over-weight a sample in training)"


@dataclass
class Options:
    media_root: Path
    format: Format | None = None  # None: detect from the first sample
    tokens: TokenCounter | None = None
    cutoff_len: int = 0
    progress: Callable[[str, int], None] | None = None  # (file, samples so far)
    dedup_memory_samples: int = 1 << 16  # distinct samples the duplicate index holds in memory before spilling
    strict: bool = False  # quality findings (duplicates, long samples, empty text) are errors too
    stage: str | None = None  # LLaMA-Factory stage the data must fit (sft, pt, dpo, rm, kto)


@dataclass
class FileReport:
    file: str
    format: str = "?"
    samples: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # errors by kind
    warnings: Counter[str] = field(default_factory=Counter)  # quality findings by kind
    layout: Layout | None = None
    dedup_bytes: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def total(self) -> int:
        return sum(self.problems.values())

    @property
    def kind(self) -> str:
        return self.layout.kind if self.layout else "?"


def validate_file(
    path: Path, opts: Options, sink: ProblemSink, layout: Layout | None = None, shown: str | None = None
) -> FileReport:
    """Every problem of one file goes to `sink`; the report counts them by kind."""
    name = shown or str(path)
    report = FileReport(name)

    def add(line: int, sample: int, fld: str, kind: str, message: str, fix: str) -> None:
        severity = "warning" if kind in WARNING_KINDS and not opts.strict else "error"
        (report.warnings if severity == "warning" else report.problems)[kind] += 1
        sink.add(Problem(name, line, sample, fld, kind, message, fix, severity))

    suffix = path.suffix.lower()
    if suffix in UNCHECKED:
        add(
            1,
            0,
            "file",
            "unchecked",
            f"LLaMA-Factory reads '{suffix}' files, but ftk validates only JSON, JSON lines and text",
            "convert it to JSON lines to have it checked",
        )
        return report
    if suffix not in EXTENSIONS:
        add(
            1,
            0,
            "file",
            "file",
            f"extension '{path.suffix}' is not read as JSON by LLaMA-Factory",
            "rename the file to .json (a JSON array) or .jsonl (one object per line)",
        )
    kind, bom = sniff(path)
    if bom:
        add(
            1,
            0,
            "file",
            "file",
            "starts with a UTF-8 byte-order mark, which JSON loaders refuse",
            "save the file as UTF-8 without BOM",
        )
    if kind == "empty":
        add(
            1,
            0,
            "file",
            "file",
            "no samples",
            "add samples (a JSON array of objects, or one object per line)",
        )
        return report

    if suffix == ".txt" and layout is None:
        layout = Layout(format="alpaca", prompt="text", query=None, response=None)
    validator = SampleValidator(layout, opts.format, MediaChecker(opts.media_root))
    records = iter_text_lines(path) if suffix == ".txt" else iter_samples(path)
    pending: list[tuple[int, int, str]] = []  # (line, sample, rendered text) waiting for the token counter

    def count_pending() -> None:
        if tokens is None or not pending:
            return
        for (line, index, _), n in zip(pending, tokens.count_batch([t for _, _, t in pending]), strict=True):
            if n > cutoff:
                add(
                    line,
                    index,
                    "sample",
                    "length",
                    f"{n} tokens (ChatML-formatted) > --cutoff-len {cutoff}",
                    "shorten or split the sample, or raise --cutoff-len (LLaMA-Factory cuts the rest off)",
                )
        pending.clear()

    tokens, cutoff, progress = opts.tokens, opts.cutoff_len, opts.progress
    with SpillingDuplicateIndex(opts.dedup_memory_samples) as dups:
        for rec in records:
            report.samples = rec.index or report.samples
            if isinstance(rec, ParseIssue):
                where = f"line {rec.line} column {rec.column}" if rec.column else f"line {rec.line}"
                fix = rec.fix + ("; the rest of the file was not checked" if rec.fatal else "")
                if kind == "lines" and rec.index == 1 and path.suffix.lower() == ".json":
                    fix += " (a .json data file holds a JSON array [{...}, ...] or one object per line)"
                add(rec.line, rec.index, "json", "json", f"{rec.message} at {where}", fix)
                if rec.fatal and rec.index:
                    report.samples = rec.index - 1  # the sample being read is not a sample
                continue
            line, index, sample = rec.line, rec.index, rec.value

            def emit(fld: str, kind: str, message: str, fix: str, _l: int = line, _i: int = index) -> None:
                add(_l, _i, fld, kind, message, fix)

            turns = validator.check(sample, emit)
            if isinstance(sample, dict):
                earlier = dups.add(fingerprint(sample), index, line)
                if earlier:
                    emit("sample", "duplicate", f"same content as sample {earlier}", DUPLICATE_FIX)
            if tokens is not None and turns is not None:
                pending.append((line, index, tokens.render(*turns)))
                if len(pending) >= TOKEN_BATCH:
                    count_pending()
            if progress is not None and index % PROGRESS_EVERY == 0:
                progress(name, index)
        count_pending()
        report.layout = validator.layout
        report.format = report.layout.format if report.layout else "?"
        if report.layout and opts.stage:
            _check_stage(report.layout, opts.stage, add)
        if report.layout and report.layout.fixed and report.samples:
            for col in report.layout.columns():
                if col not in report.layout.seen:
                    add(
                        1,
                        0,
                        col,
                        "column",
                        f"the dataset_info.json entry maps column '{col}', but no sample has it; LLaMA-Factory "
                        f"stops with KeyError: '{col}'",
                        f"add '{col}' to the samples, or remove it from the entry's columns",
                    )
        for line, index, earlier in dups.spilled_duplicates():
            add(line, index, "sample", "duplicate", f"same content as sample {earlier}", DUPLICATE_FIX)
        report.dedup_bytes = dups.nbytes
    if report.samples == 0 and not report.problems:
        add(
            1,
            0,
            "file",
            "file",
            "no samples",
            "add samples (a JSON array of objects, or one object per line)",
        )
    return report


def _check_stage(layout: Layout, stage: str, add: Callable[[int, int, str, str, str, str], None]) -> None:
    """LLaMA-Factory refuses ranking data outside dpo/rm and drops every sample of a kind its stage cannot use."""
    need = STAGE_KINDS.get(stage)
    if need is None or layout.kind == need:
        return
    add(
        1,
        0,
        "file",
        "stage",
        f"holds {layout.kind} data ({KIND_HELP[layout.kind]}), but stage '{stage}' trains on {need} data "
        f"({KIND_HELP[need]})",
        f"use a {need} data set for this stage, or a recipe whose stage fits this data",
    )
