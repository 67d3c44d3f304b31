"""Validate whole data files: stream the samples, check each one, count every problem by kind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftk.dataset.dedup import SpillingDuplicateIndex, fingerprint
from ftk.dataset.formats import Format, Layout
from ftk.dataset.media import MediaChecker
from ftk.dataset.problems import Problem, ProblemSink
from ftk.dataset.readers import ParseIssue, iter_samples, sniff
from ftk.dataset.tokens import TokenCounter
from ftk.dataset.validators import SampleValidator

EXTENSIONS = (".json", ".jsonl")
PROGRESS_EVERY = 4096
DUPLICATE_FIX = "remove the copy (duplicates over-weight a sample in training)"


@dataclass
class Options:
    media_root: Path
    format: Format | None = None  # None: detect from the first sample
    tokens: TokenCounter | None = None
    cutoff_len: int = 0
    progress: Callable[[str, int], None] | None = None  # (file, samples so far)
    dedup_memory_samples: int = 1 << 16  # distinct samples the duplicate index holds in memory before spilling


@dataclass
class FileReport:
    file: str
    format: str = "?"
    samples: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    layout: Layout | None = None
    dedup_bytes: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def total(self) -> int:
        return sum(self.problems.values())


def validate_file(
    path: Path, opts: Options, sink: ProblemSink, layout: Layout | None = None, shown: str | None = None
) -> FileReport:
    """Every problem of one file goes to `sink`; the report counts them by kind."""
    name = shown or str(path)
    report = FileReport(name)

    def add(line: int, sample: int, fld: str, kind: str, message: str, fix: str) -> None:
        report.problems[kind] += 1
        sink.add(Problem(name, line, sample, fld, kind, message, fix))

    if path.suffix.lower() not in EXTENSIONS:
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

    validator = SampleValidator(layout, opts.format, MediaChecker(opts.media_root))
    with SpillingDuplicateIndex(opts.dedup_memory_samples) as dups:
        tokens, cutoff, progress = opts.tokens, opts.cutoff_len, opts.progress
        for rec in iter_samples(path):
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
                n = tokens.count(*turns)
                if n > cutoff:
                    emit(
                        "sample",
                        "length",
                        f"{n} tokens (ChatML-formatted) > --cutoff-len {cutoff}",
                        "shorten or split the sample, or raise --cutoff-len (LLaMA-Factory cuts the rest off)",
                    )
            if progress is not None and index % PROGRESS_EVERY == 0:
                progress(name, index)
        report.layout = validator.layout
        report.format = report.layout.format if report.layout else "?"
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
