"""Sampled capture of prompts and outputs (`ftk gateway capture`), off unless GATEWAY_CAPTURE_RATE > 0.

nginx (njs picks the sampled requests) sends each capture as one syslog datagram over a unix socket in
GATEWAY_PREFIX: nothing is written to disk before this process has masked it. Here every text field is masked
(e-mail addresses, card numbers, IBANs, phone numbers, ID numbers) and appended to
GATEWAY_CAPTURE_DIR/capture-YYYY-MM-DD.jsonl (0600, one file per day: the rotation); files older than
GATEWAY_CAPTURE_DAYS are deleted.

Libraries where a regular expression would guess: phone numbers with `phonenumbers` (Google's libphonenumber
metadata: which digit groups are numbers in which country, kept up to date upstream), card numbers and IBANs with
`python-stdnum` (their checksums: Luhn, ISO 7064 mod 97). E-mail addresses and the remaining ID-like digit runs
are plain patterns, masked on the side of caution.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
from pathlib import Path

import phonenumbers
from stdnum import iban, luhn

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD_RE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
ID_RE = re.compile(r"(?<![\dA-Za-z])(?:\d[ ./-]?){5,}\d(?![\dA-Za-z])")  # 6+ digits: SSNs, passports, accounts
TEXT_FIELDS = ("prompt", "output")
DATAGRAM = 262144  # larger than any capture: njs truncates prompt and output


def _sub_valid(pattern: re.Pattern[str], valid, label: str, text: str) -> str:
    def one(m: re.Match[str]) -> str:
        compact = re.sub(r"[ -]", "", m.group(0))
        return label if valid(compact) else m.group(0)

    return pattern.sub(one, text)


def mask(text: str, region: str = "US") -> str:
    """`text` with personal data replaced by <EMAIL>, <CARD>, <IBAN>, <PHONE>, <ID>."""
    text = EMAIL_RE.sub("<EMAIL>", text)
    text = _sub_valid(IBAN_RE, iban.is_valid, "<IBAN>", text)
    text = _sub_valid(CARD_RE, luhn.is_valid, "<CARD>", text)
    spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)]
    for start, end in reversed(spans):
        text = text[:start] + "<PHONE>" + text[end:]
    return ID_RE.sub("<ID>", text)


def masked_record(message: str, region: str) -> dict:
    """A capture datagram's JSON with every text field masked (a line that is not JSON is masked whole)."""
    try:
        rec = json.loads(message)
    except ValueError:
        return {"unparsed": mask(message, region)}
    if not isinstance(rec, dict):
        return {"unparsed": mask(message, region)}
    for field in TEXT_FIELDS:
        if isinstance(rec.get(field), str):
            rec[field] = mask(rec[field], region)
    return rec


def syslog_message(datagram: bytes) -> str:
    """The message of nginx's syslog line: `<PRI>TIMESTAMP TAG: MESSAGE` (nohostname)."""
    text = datagram.decode("utf-8", "replace")
    _, sep, rest = text.partition(": ")
    return rest if sep else text


class CaptureWriter:
    def __init__(self, folder: Path, days: int) -> None:
        self.folder, self.days = folder, days
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        self._day = ""

    def path(self, day: str) -> Path:
        return self.folder / f"capture-{day}.jsonl"

    def write(self, rec: dict) -> Path:
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        if day != self._day:
            self._day = day
            self.expire()
        path = self.path(day)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return path

    def expire(self) -> None:
        """Delete the daily files older than `days`."""
        oldest = (dt.datetime.now(dt.UTC) - dt.timedelta(days=self.days)).strftime("%Y-%m-%d")
        for path in self.folder.glob("capture-*.jsonl"):
            if path.stem.removeprefix("capture-") < oldest:
                path.unlink(missing_ok=True)


def serve(sock_path: Path, writer: CaptureWriter, region: str) -> None:
    """Receive nginx's capture datagrams until interrupted."""
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock_path.chmod(0o622)  # nginx's workers (maybe another user) write; only this user reads
    writer.expire()
    try:
        while True:
            datagram = sock.recv(DATAGRAM)
            writer.write(masked_record(syslog_message(datagram), region))
    finally:
        sock.close()
        sock_path.unlink(missing_ok=True)
