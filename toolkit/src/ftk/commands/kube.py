"""`ftk kube render`: the kustomize overlay of configs/kubernetes/base written from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ftk import paths
from ftk.console import info
from ftk.files import write_atomic
from ftk.kube import overlay
from ftk.settings import get_settings

SECRETS_HINT = """next, once per cluster (the Secrets the pods read; never written into the overlay):
  kubectl create namespace {ns}
  kubectl -n {ns} create secret generic ftk-secrets --from-file=api_keys={keys} --from-file=vllm_api_key={vkey}
  kubectl -n {ns} create secret tls ftk-tls --cert={cert} --key={key}
then: kubectl apply -k {out}   (docs/kubernetes.md)"""


def register(app: typer.Typer) -> None:
    kube = typer.Typer(help="Kubernetes: the serve path, the autoscaler and the training Job.", no_args_is_help=True)
    app.add_typer(kube, name="kube")

    @kube.command("render")
    def render(
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Overlay folder (default: KUBE_OUT_DIR).")] = None,
    ) -> None:
        """Write a kustomize overlay (kustomization.yaml, prometheusrule.yaml) from .env; apply it with kubectl."""
        s = get_settings()
        folder = paths.resolve(out) if out else s.path("kube_out_dir")
        files = overlay.render(s, folder)
        for name, text in files.items():
            write_atomic(folder / name, text, mode=0o644)
        info(f"kustomize overlay of {overlay.base_dir()} written to {folder}")
        print(
            SECRETS_HINT.format(
                ns=s.kube_namespace,
                keys=s.path("api_keys_file"),
                vkey=s.path("vllm_api_key_file"),
                cert=s.path("tls_cert"),
                key=s.path("tls_key"),
                out=folder,
            )
        )
