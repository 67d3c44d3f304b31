"""`ftk run <stage>`: the one implementation of each stage. scripts/<stage>.sh call it and keep what bash is
right for (pid files, waiting, signals); each stage's code lives in its own package (`ftk.<stage>.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ftk.console import EXIT_USAGE, UserError
from ftk.gateway import stage as gateway_stage
from ftk.monitor import stage as monitor_stage
from ftk.settings import get_settings

run_app = typer.Typer(help="Run a pipeline stage (what scripts/<stage>.sh run).", no_args_is_help=True)

RenderOnly = Annotated[bool, typer.Option("--render-only", help="Render and check the configuration, start nothing.")]
Prepare = Annotated[
    bool, typer.Option("--prepare", help="Render, check, and check that it could start (ports); start nothing.")
]


Mode = Literal["render", "prepare", "foreground"]  # the same for every stage that starts a server


def _mode(render_only: bool, prepare: bool) -> Mode:
    if render_only and prepare:
        raise UserError("--render-only and --prepare exclude each other; give one", EXIT_USAGE)
    return "render" if render_only else "prepare" if prepare else "foreground"


@run_app.command("gateway")
def gateway(render_only: RenderOnly = False, prepare: Prepare = False) -> None:
    """The nginx gateway: its configuration from the settings, checked, then nginx in the foreground.

    Renders docker/nginx/templates, the API key map and vLLM's key into GATEWAY_PREFIX/conf and checks them with
    nginx -t. scripts/gateway.sh makes the TLS certificate first and runs --daemon, --stop and --reload around it.
    """
    gateway_stage.run(get_settings(), _mode(render_only, prepare))


@run_app.command("monitor")
def monitor(
    render_only: RenderOnly = False,
    prepare: Prepare = False,
    rules_dir: Annotated[
        Path | None, typer.Option(help="Alert and recording rules (default: docker/prometheus/rules).")
    ] = None,
) -> None:
    """Prometheus: its configuration from the settings, checked, then Prometheus in the foreground.

    Renders docker/prometheus/prometheus.yml.template into MONITOR_DIR and checks it (and the rules) with promtool.
    scripts/monitor.sh runs --daemon and --stop around it.
    """
    monitor_stage.run(get_settings(), _mode(render_only, prepare), rules_dir.resolve() if rules_dir else None)


def register(app: typer.Typer) -> None:
    app.add_typer(run_app, name="run")
