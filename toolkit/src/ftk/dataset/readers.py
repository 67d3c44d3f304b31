"""Stream samples out of a JSON array or a JSON-lines file, with the line each sample starts on.

Memory stays flat whatever the file size: JSON lines are read one line at a time; a JSON array is decoded one
element at a time from a sliding text buffer (`json.JSONDecoder.raw_decode` at an offset), refilled in chunks.
As in LLaMA-Factory (the `datasets` json builder), the content decides, not the extension: a file whose first
non-blank character is `[` is an array, anything else is read as JSON lines.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20  # characters read per refill
MAX_SAMPLE = 64 << 20  # a sample larger than this is reported instead of buffered
_NEAR_END = 32  # a decode error this close to the buffer's end may only mean "read more"
_WS = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Record:
    index: int  # 1-based sample number
    line: int  # line the sample starts on
    value: Any


@dataclass(frozen=True, slots=True)
class ParseIssue:
    index: int  # the sample being read (1-based)
    line: int
    column: int
    message: str
    fix: str
    fatal: bool  # the rest of the file cannot be read


def sniff(path: Path) -> tuple[str, bool]:
    """('array' | 'lines' | 'empty', has_bom) from the first non-blank character of the file."""
    with path.open("rb") as f:
        head = f.read(4096)
        bom = head.startswith(codecs.BOM_UTF8)
        head = head.removeprefix(codecs.BOM_UTF8)
        while head and not head.strip():
            head = f.read(4096)
    text = head.lstrip()
    if not text:
        return "empty", bom
    return ("array" if text[:1] == b"[" else "lines"), bom


def iter_samples(path: Path, chunk: int = CHUNK) -> Iterator[Record | ParseIssue]:
    kind, _ = sniff(path)
    if kind == "array":
        with path.open("rb") as f:
            yield from _ArrayReader(f, chunk).samples()
    elif kind == "lines":
        yield from _iter_lines(path)


def iter_text_lines(path: Path) -> Iterator[Record | ParseIssue]:
    """A .txt file as LLaMA-Factory's `text` builder reads it: each line is one sample {"text": line}."""
    with path.open("rb") as f:
        for index, raw in enumerate(f, 1):
            try:
                yield Record(index, index, {"text": raw.decode("utf-8").rstrip("\r\n")})
            except UnicodeDecodeError as err:
                yield ParseIssue(index, index, err.start + 1, "invalid UTF-8", "save the file as UTF-8", False)


def _iter_lines(path: Path) -> Iterator[Record | ParseIssue]:
    loads = json.loads
    index = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            index += 1
            try:
                yield Record(index, lineno, loads(raw.decode("utf-8").rstrip("\r\n")))
            except UnicodeDecodeError as err:
                yield ParseIssue(index, lineno, err.start + 1, "invalid UTF-8", "save the file as UTF-8", False)
            except json.JSONDecodeError as err:
                yield ParseIssue(
                    index,
                    lineno,
                    err.colno,
                    f"invalid JSON: {err.msg}",
                    "fix the JSON on this line (one complete object per line)",
                    False,
                )


class _EncodingError(Exception):
    """Bytes that are not UTF-8, raised once the text before them has been parsed: (line, column, offset)."""


class _ArrayReader:
    """Decodes the elements of a top-level JSON array one by one from a sliding buffer."""

    def __init__(self, f: BinaryIO, chunk: int) -> None:
        self.f = f
        self.chunk = chunk
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.json = json.JSONDecoder()
        self.buf = ""
        self.pos = 0  # cursor in buf
        self.base = 0  # absolute character offset of buf[0]
        self.line = 1  # line of the cursor
        self.line_start = 0  # absolute offset where the cursor's line starts
        self.eof = False
        self.bytes_read = 0
        self.newlines_decoded = 0  # in all text decoded so far (to place an encoding error)
        self.bad_bytes: _EncodingError | None = None
        self.index = 0  # the sample being read

    # --- buffer --------------------------------------------------------------------------------------
    def _fill(self) -> None:
        if self.bad_bytes is not None:  # the text before them has been read: now report them
            raise self.bad_bytes
        raw = self.f.read(self.chunk)
        self.bytes_read += len(raw)
        self.eof = not raw
        try:
            text = self.decoder.decode(raw, final=self.eof)
        except UnicodeDecodeError as err:
            text = bytes(err.object[: err.start]).decode("utf-8")
            self.bad_bytes = self._encoding_error(err)
            self.eof = False
        self.newlines_decoded += text.count("\n")
        if self.base == 0 and self.pos == 0 and self.buf == "":
            text = text.removeprefix("\ufeff")
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.base += self.pos
            self.pos = 0
        self.buf += text

    def _advance(self, new_pos: int) -> None:
        newlines = self.buf.count("\n", self.pos, new_pos)
        if newlines:
            self.line += newlines
            self.line_start = self.base + self.buf.rfind("\n", self.pos, new_pos) + 1
        self.pos = new_pos

    def _where(self, at: int) -> tuple[int, int]:
        """(line, column) of buffer offset `at` (>= the cursor), both 1-based."""
        newlines = self.buf.count("\n", self.pos, at)
        if newlines:
            return self.line + newlines, at - self.buf.rfind("\n", self.pos, at)
        return self.line, self.base + at - self.line_start + 1

    def _skip_ws(self) -> str:
        """The next non-blank character ('' at the end of the file); the cursor is moved onto it."""
        while True:
            buf, pos, n = self.buf, self.pos, len(self.buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self._advance(pos)
            if pos < n:
                return buf[pos]
            if self.eof:
                return ""
            self._fill()

    # --- elements ------------------------------------------------------------------------------------
    def _issue(self, index: int, at: int, message: str, fix: str) -> ParseIssue:
        line, col = self._where(at)
        return ParseIssue(index, line, col, message, fix, True)

    def _decode(self, index: int) -> Record | ParseIssue:
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                near_end = err.pos >= len(self.buf) - _NEAR_END or err.msg.startswith("Unterminated string")
                if self.eof or not near_end:
                    return self._issue(index, err.pos, f"invalid JSON: {err.msg}", "fix the JSON of this sample")
                if len(self.buf) - self.pos > MAX_SAMPLE:
                    return self._issue(
                        index,
                        self.pos,
                        f"sample larger than {MAX_SAMPLE >> 20} MiB or an unterminated string",
                        "close the string, or split the sample",
                    )
                self._fill()
                continue
            if end >= len(self.buf) and not self.eof:  # a number may go on in the next chunk
                self._fill()
                continue
            line = self.line
            self._advance(end)
            return Record(index, line, value)

    def samples(self) -> Iterator[Record | ParseIssue]:
        try:
            self._fill()
            self._skip_ws()
            self._advance(self.pos + 1)  # the '['
            index = 0
            c = self._skip_ws()
            if c == "]":
                yield from self._trailing(index)
                return
            while True:
                index += 1
                self.index = index
                if c == "":
                    yield self._issue(
                        index, self.pos, "unexpected end of file inside the array", "close the array with ']'"
                    )
                    return
                item = self._decode(index)
                yield item
                if isinstance(item, ParseIssue):
                    return
                c = self._skip_ws()
                if c == "]":
                    yield from self._trailing(index)
                    return
                if c != ",":
                    fix = "close the array with ']'" if c == "" else "put ',' between samples"
                    yield self._issue(index + 1, self.pos, "invalid JSON: expecting ',' or ']' after a sample", fix)
                    return
                self._advance(self.pos + 1)
                c = self._skip_ws()
                if c == "]":
                    yield self._issue(
                        index + 1,
                        self.pos,
                        "invalid JSON: trailing comma before ']'",
                        "remove the comma after the last sample",
                    )
                    return
        except _EncodingError as err:
            line, column, offset = err.args
            yield ParseIssue(self.index, line, column, f"invalid UTF-8 (byte {offset})", "save the file as UTF-8", True)

    def _encoding_error(self, err: UnicodeDecodeError) -> _EncodingError:
        raw = bytes(err.object)
        line = self.newlines_decoded + raw.count(b"\n", 0, err.start) + 1
        last_nl = raw.rfind(b"\n", 0, err.start)
        first_chunk = self.bytes_read == len(raw)
        column = err.start - last_nl if last_nl >= 0 or first_chunk else 0  # 0: the line began in an earlier chunk
        return _EncodingError(line, column, self.bytes_read - len(raw) + err.start)

    def _trailing(self, index: int) -> Iterator[ParseIssue]:
        self._advance(self.pos + 1)  # the ']'
        if self._skip_ws():
            yield self._issue(
                index,
                self.pos,
                "invalid JSON: extra data after the closing ']'",
                "remove everything after the array",
            )
