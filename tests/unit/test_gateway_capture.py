"""Sampled captures: personal data masked before anything is written, files 0600 in a 0700 folder, one per day,
expired after GATEWAY_CAPTURE_DAYS."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from ftk.gateway import capture

PII = {
    "jane.doe@example.co.uk": "<EMAIL>",
    "+1 415-555-2671": "<PHONE>",
    "+44 20 7946 0958": "<PHONE>",
    "4111 1111 1111 1111": "<CARD>",
    "5500-0000-0000-0004": "<CARD>",
    "DE89 3704 0044 0532 0130 00": "<IBAN>",
    "123-45-6789": "<ID>",
    "passport 987654321": "passport <ID>",
}


@pytest.mark.parametrize(("raw", "masked"), PII.items(), ids=list(PII))
def test_each_kind_of_personal_data_is_masked(raw: str, masked: str) -> None:
    out = capture.mask(f"before {raw} after")
    assert out == f"before {masked} after"


def test_ordinary_text_and_small_numbers_stay() -> None:
    text = "Paris has 3 airports and 20 arrondissements; version 1.2.3 shipped."
    assert capture.mask(text) == text


def test_receiver_masks_then_writes_0600_and_expires_old_days(tmp_path: Path) -> None:
    folder = tmp_path / "cap"
    writer = capture.CaptureWriter(folder, days=2)
    old = folder / "capture-2000-01-01.jsonl"
    old.write_text("{}\n")
    sock = tmp_path / "c.sock"
    threading.Thread(target=capture.serve, args=(sock, writer, "US"), daemon=True).start()
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    rec = {"request_id": "r1", "prompt": "I am jane@example.com", "output": "call +1 415-555-2671"}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(f"<190>Dec  7 07:00:00 ftk_capture: {json.dumps(rec)}".encode(), str(sock))
    for _ in range(100):  # today's file, with the record (the old file is there from the start)
        files = [p for p in folder.glob("capture-*.jsonl") if p != old]
        if files and files[0].stat().st_size:
            break
        time.sleep(0.05)
    (path,) = files
    assert not old.exists(), "a file older than GATEWAY_CAPTURE_DAYS is deleted"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    got = json.loads(path.read_text())
    assert got == {"request_id": "r1", "prompt": "I am <EMAIL>", "output": "call <PHONE>"}
    assert os.stat(sock).st_mode & 0o044 == 0, "others may send to the socket, never read it"
