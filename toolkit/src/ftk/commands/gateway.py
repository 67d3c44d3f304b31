"""`ftk gateway keys add|update|list|revoke` (the API keys the gateway accepts and each key's policy),
`ftk gateway usage` (requests and tokens per key and model, from the access log) and `ftk gateway metrics`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ftk.console import UserError, console, info
from ftk.gateway import keys as gk
from ftk.gateway import log_metrics
from ftk.gateway import policy as gp
from ftk.gateway import usage as gu
from ftk.settings import get_settings

RELOAD_HINT = "apply it to a running gateway with: scripts/gateway.sh --reload"

FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="Keys file (default: API_KEYS_FILE).")]
# The policy options of `keys add` and `keys update`; in update, an empty value ("") clears the field.
ModelsOpt = Annotated[str | None, typer.Option("--models", help=gp.HELP["models"].capitalize() + ".")]
MaxTokensOpt = Annotated[str | None, typer.Option("--max-tokens", help=gp.HELP["max_tokens"].capitalize() + ".")]
NOpt = Annotated[str | None, typer.Option("--n", help=gp.HELP["n"].capitalize() + ".")]
ImagesOpt = Annotated[str | None, typer.Option("--images", help=gp.HELP["images"].capitalize() + ".")]
RpsOpt = Annotated[str | None, typer.Option("--rps", help=gp.HELP["rps"].capitalize() + ".")]
BurstOpt = Annotated[str | None, typer.Option("--burst", help=gp.HELP["burst"].capitalize() + ".")]
ConnsOpt = Annotated[str | None, typer.Option("--conns", help=gp.HELP["conns"].capitalize() + ".")]
POLICY_COLUMNS = ("models", "max_tokens", "n", "images", "rps", "burst", "conns")


def _changes(**options: str | None) -> dict[str, str]:
    """The policy fields given on the command line (None: not given)."""
    return {name: value.strip() for name, value in options.items() if value is not None}


def _file(path: Path | None) -> Path:
    return path if path is not None else get_settings().path("api_keys_file")


def register(app: typer.Typer) -> None:
    gateway = typer.Typer(help="The nginx TLS gateway: API keys and request metrics.", no_args_is_help=True)
    keys = typer.Typer(help="API keys accepted by the gateway (stored 0600 in API_KEYS_FILE).", no_args_is_help=True)
    gateway.add_typer(keys, name="keys")
    app.add_typer(gateway, name="gateway")

    @keys.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="A name for who uses the key, e.g. team-a.")],
        file: FileOpt = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key.")] = False,
        models: ModelsOpt = None,
        max_tokens: MaxTokensOpt = None,
        n: NOpt = None,
        images: ImagesOpt = None,
        rps: RpsOpt = None,
        burst: BurstOpt = None,
        conns: ConnsOpt = None,
    ) -> None:
        """Create a random key with an optional policy, store it, and print it once (it is not shown again).

        Without policy options the key may use every model within the gateway-wide caps and limits."""
        path = _file(file)
        changes = _changes(models=models, max_tokens=max_tokens, n=n, images=images, rps=rps, burst=burst, conns=conns)
        policy = gp.Policy().updated({k: v for k, v in changes.items() if v}, "ftk gateway keys add")
        record = gk.add_key(path, name, policy=policy)
        if quiet:
            print(record.key)
            return
        console.print(f"key '{record.name}' (id {record.id}) added to {path}:")
        print(record.key)
        info(f"this is the only time the key is shown; {RELOAD_HINT}")

    @keys.command("update")
    def update(
        name_or_id: Annotated[str, typer.Argument(help="The key's name or key id.")],
        file: FileOpt = None,
        models: ModelsOpt = None,
        max_tokens: MaxTokensOpt = None,
        n: NOpt = None,
        images: ImagesOpt = None,
        rps: RpsOpt = None,
        burst: BurstOpt = None,
        conns: ConnsOpt = None,
    ) -> None:
        """Change an active key's policy; an option given as "" clears that field (back to the gateway default)."""
        path = _file(file)
        changes = _changes(models=models, max_tokens=max_tokens, n=n, images=images, rps=rps, burst=burst, conns=conns)
        if not changes:
            raise typer.BadParameter("give at least one of --models --max-tokens --n --images --rps --burst --conns")
        for r in gk.update_key(path, name_or_id, changes):
            console.print(f"updated '{r.name}' (id {r.id}): {' '.join(r.policy.tokens()) or 'no policy (defaults)'}")
        info(RELOAD_HINT)

    @keys.command("list")
    def list_(file: FileOpt = None) -> None:
        """Show names, ids, status and each key's policy; never the keys ("-": the gateway-wide default)."""
        path = _file(file)
        table = Table(title=f"API keys in {path}")
        for col in ("name", "key id", "status", "created", *POLICY_COLUMNS):
            table.add_column(col)
        for r in gk.read_keys(path):
            table.add_row(r.name, r.id, r.status, r.created or "-", *(r.policy.describe(c) for c in POLICY_COLUMNS))
        console.print(table)

    @keys.command("revoke")
    def revoke(
        name_or_id: Annotated[str, typer.Argument(help="The key's name or key id.")],
        file: FileOpt = None,
    ) -> None:
        """Mark a key revoked (the gateway answers 403 for it after a reload)."""
        path = _file(file)
        for r in gk.revoke_key(path, name_or_id):
            console.print(f"revoked '{r.name}' (id {r.id})")
        info(RELOAD_HINT)

    @gateway.command("usage")
    def usage(
        log: Annotated[Path | None, typer.Option(help="Access log (default: GATEWAY_PREFIX/logs/access.log).")] = None,
        since: Annotated[str, typer.Option(help="From this time on, an ISO prefix: 2026-12-01.")] = "",
        until: Annotated[str, typer.Option(help="Before this time, an ISO prefix: 2027-01-01.")] = "",
        csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout (for billing) instead of a table.")] = False,
        file: FileOpt = None,
    ) -> None:
        """Requests, errors and tokens per API key and model, from the gateway's access log and its rotations."""
        s = get_settings()
        path = log or s.path("gateway_prefix") / "logs" / "access.log"
        files = gu.log_files(path)
        if not files:
            raise UserError(f"no access log at {path}; the gateway writes it (scripts/gateway.sh), or pass --log")
        keys_path = _file(file)
        names = {r.id: r.name for r in gk.read_keys(keys_path)} if os.access(keys_path, os.R_OK) else {}
        rows = gu.report(files, names, since, until)
        if csv:
            sys.stdout.write(gu.to_csv(rows))
            return
        table = Table(
            title=f"Gateway usage from {path}" + (f" ({since or '...'} to {until or 'now'})" if since or until else "")
        )
        for col in gu.COLUMNS:
            table.add_column(col, justify="right" if col not in ("key_name", "key_id", "model") else "left")
        for r in rows:
            table.add_row(*r.values())
        console.print(table)

    @gateway.command("capture")
    def capture() -> None:
        """Receive the sampled captures (GATEWAY_CAPTURE_RATE) from nginx, mask personal data, write them 0600.

        Listens on GATEWAY_PREFIX/capture.sock; writes GATEWAY_CAPTURE_DIR/capture-YYYY-MM-DD.jsonl and deletes
        files older than GATEWAY_CAPTURE_DAYS. Start it before the gateway: without it nginx drops the captures."""
        from ftk.gateway import capture as gc  # phonenumbers and stdnum: only this command needs them

        s = get_settings()
        if s.gateway_capture_rate == 0:
            info("GATEWAY_CAPTURE_RATE is 0: nginx sends no capture (set it, then scripts/gateway.sh --reload)")
        sock = s.path("gateway_prefix") / "capture.sock"
        folder = s.path("gateway_capture_dir")
        info(f"gateway capture: {sock} -> {folder} (masked, 0600, kept {s.gateway_capture_days} days)")
        gc.serve(sock, gc.CaptureWriter(folder, s.gateway_capture_days), s.gateway_capture_region)

    @gateway.command("metrics")
    def metrics(
        log: Annotated[Path | None, typer.Option(help="Access log (default: GATEWAY_PREFIX/logs/access.log).")] = None,
        bind: Annotated[str | None, typer.Option(help="Address (default: GATEWAY_INTERNAL_BIND).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default: GATEWAY_METRICS_PORT).")] = None,
    ) -> None:
        """Serve Prometheus metrics counted from the gateway's JSON access log (status, key id, duration)."""
        s = get_settings()
        path = log or s.path("gateway_prefix") / "logs" / "access.log"
        ports = {
            "public": str(s.gateway_https_port),
            "http": str(s.gateway_http_port),
            "internal": str(s.gateway_internal_port),
        }
        bind = bind or s.gateway_internal_bind
        port = port or s.gateway_metrics_port
        info(f"gateway metrics from {path} on http://{bind}:{port}/metrics")
        log_metrics.serve(log_metrics.GatewayLogMetrics(path, ports), bind, port)
