"""Prometheus metrics from the gateway's JSON access log: requests per listener, status and key id; durations;
inference requests and tokens per key id and model (the audit fields njs adds: model, prompt/completion tokens).

nginx (open source) exports no per-status counters, so the error-rate and 429-rate alerts count the access log
that scripts/gateway.sh configures (one JSON object per line), following it across rotation and truncation.
The text exposition format is written directly: three metric families do not justify another dependency.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class GatewayLogMetrics:
    def __init__(self, log: Path, ports: dict[str, str]) -> None:
        self.log = log
        self.listener_of_port = {v: k for k, v in ports.items()}  # "8443" -> "public"
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.bytes_sent: dict[str, int] = defaultdict(int)
        self.hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.hist_sum: dict[str, float] = defaultdict(float)
        self.usage_requests: dict[tuple[str, str, str], int] = defaultdict(int)  # (key id, model, status class)
        self.tokens: dict[tuple[str, str, str], int] = defaultdict(int)  # (key id, model, prompt|completion)
        self.lines = self.bad_lines = 0
        self._pos = 0
        self._inode: int | None = None

    def observe(self, line: str) -> None:
        try:
            rec = json.loads(line)
            status = str(int(rec["status"]))
            duration = float(rec.get("request_time") or 0.0)
        except (ValueError, KeyError, TypeError):
            self.bad_lines += 1
            return
        listener = self.listener_of_port.get(str(rec.get("server_port", "")), "other")
        key_id = str(rec.get("key_id") or "")
        with self.lock:
            self.lines += 1
            self.requests[(listener, status, key_id)] += 1
            self.bytes_sent[listener] += int(rec.get("bytes_sent") or 0)
            counts = self.hist[listener]
            for i, bound in enumerate(BUCKETS):
                if duration <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self.hist_sum[listener] += duration
            self._usage(rec, key_id, status)

    def _usage(self, rec: dict, key_id: str, status: str) -> None:
        """Inference requests (those with a model) and their tokens, per key id and model (the lock is held). The
        model is the client's word: only a 2xx answer (a model vLLM serves) names it, so that made-up names cannot
        grow the series without bound; the others count as model "-"."""
        model = str(rec.get("model") or "")
        if not model or not key_id:
            return
        if not status.startswith("2"):
            model = "-"
        self.usage_requests[(key_id, model, status[0] + "xx")] += 1
        for kind in ("prompt", "completion"):
            n = rec.get(f"{kind}_tokens")
            if isinstance(n, int) and n > 0:
                self.tokens[(key_id, model, kind)] += n

    def poll(self) -> None:
        """Read what was appended since the last call; start over after rotation or truncation."""
        try:
            st = self.log.stat()
        except FileNotFoundError:
            return
        if self._inode != st.st_ino or st.st_size < self._pos:
            self._inode, self._pos = st.st_ino, 0
        if st.st_size == self._pos:
            return
        with self.log.open("rb") as fh:
            fh.seek(self._pos)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next poll
        for raw in data[:end].splitlines():
            if raw.strip():
                self.observe(raw.decode("utf-8", "replace"))
        self._pos += end

    def render(self) -> str:
        out = [
            "# HELP ftk_gateway_requests_total Requests answered by the gateway, from its JSON access log.",
            "# TYPE ftk_gateway_requests_total counter",
        ]
        with self.lock:
            for (listener, status, key_id), n in sorted(self.requests.items()):
                out.append(
                    f'ftk_gateway_requests_total{{listener="{listener}",status="{status}",key_id="{key_id}"}} {n}'
                )
            out += [
                "# HELP ftk_gateway_response_bytes_total Bytes sent to clients.",
                "# TYPE ftk_gateway_response_bytes_total counter",
            ]
            for listener, n in sorted(self.bytes_sent.items()):
                out.append(f'ftk_gateway_response_bytes_total{{listener="{listener}"}} {n}')
            out += [
                "# HELP ftk_gateway_request_duration_seconds Request time as nginx logs it.",
                "# TYPE ftk_gateway_request_duration_seconds histogram",
            ]
            for listener, counts in sorted(self.hist.items()):
                for bound, n in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                    out.append(f'ftk_gateway_request_duration_seconds_bucket{{listener="{listener}",le="{bound}"}} {n}')
                out.append(
                    f'ftk_gateway_request_duration_seconds_sum{{listener="{listener}"}} {self.hist_sum[listener]}'
                )
                out.append(f'ftk_gateway_request_duration_seconds_count{{listener="{listener}"}} {counts[-1]}')
            out += [
                "# HELP ftk_gateway_model_requests_total Inference requests per API key id, model and status class.",
                "# TYPE ftk_gateway_model_requests_total counter",
            ]
            for (key_id, model, code), n in sorted(self.usage_requests.items()):
                labels = f'key_id="{key_id}",model="{_label(model)}",status="{code}"'
                out.append(f"ftk_gateway_model_requests_total{{{labels}}} {n}")
            out += [
                "# HELP ftk_gateway_tokens_total Tokens per API key id, model and kind, from vLLM's usage.",
                "# TYPE ftk_gateway_tokens_total counter",
            ]
            for (key_id, model, kind), n in sorted(self.tokens.items()):
                out.append(f'ftk_gateway_tokens_total{{key_id="{key_id}",model="{_label(model)}",kind="{kind}"}} {n}')
            out += [
                "# HELP ftk_gateway_log_lines_invalid_total Access-log lines that were not gateway JSON.",
                "# TYPE ftk_gateway_log_lines_invalid_total counter",
                f"ftk_gateway_log_lines_invalid_total {self.bad_lines}",
            ]
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    """A label value in the text format: backslash, quote and newline escaped (a model name comes from clients)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serve(metrics: GatewayLogMetrics, bind: str, port: int, interval: float = 1.0) -> None:
    """Poll the log in a thread and answer GET /metrics until interrupted."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    def follow() -> None:
        while True:
            metrics.poll()
            time.sleep(interval)

    metrics.poll()
    threading.Thread(target=follow, daemon=True).start()
    server = ThreadingHTTPServer((bind, port), Handler)
    try:
        server.serve_forever()
    finally:
        server.server_close()
