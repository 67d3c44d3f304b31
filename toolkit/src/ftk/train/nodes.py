"""Multi-node runs start only when every node trains the same thing: node 0 writes the sha256 of its rendered
recipe and of each data file to runs/<RUN_ID>/nodes/node-0.json (RUNS_DIR shared by the nodes, as the Kubernetes
Job and the second-node compose layout mount it); every other node waits for it and compares its own. A
difference stops that node before torchrun starts, naming the node and what differs."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from ftk.console import UserError, info
from ftk.files import sha256_file, write_atomic
from ftk.settings import Settings

# keys that differ between nodes or runs without changing what is trained
NODE_LOCAL_KEYS = ("resume_from_checkpoint",)


def multi_node(s: Settings) -> bool:
    return s.nnodes > 1


def uses_torchrun(s: Settings) -> bool:
    """LLaMA-Factory starts torchrun only when FORCE_TORCHRUN is set or it sees several GPUs: ftk sets it for
    every run of more than one process (CPU processes included)."""
    return s.force_torchrun or s.nnodes > 1 or s.nproc_per_node > 1


def fingerprint(config: dict[str, Any], data_files: dict[str, list[Path]]) -> dict[str, Any]:
    same = {k: v for k, v in config.items() if k not in NODE_LOCAL_KEYS}
    recipe = yaml.safe_dump(same, sort_keys=True)
    return {
        "recipe_sha256": hashlib.sha256(recipe.encode()).hexdigest(),
        "data": {str(f): sha256_file(f) for files in data_files.values() for f in files},
    }


def node_file(s: Settings, rank: int) -> Path:
    return s.run_dir / "nodes" / f"node-{rank}.json"


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    out = []
    if mine["recipe_sha256"] != theirs["recipe_sha256"]:
        out.append("the rendered recipe (train.yaml: recipe file, .env values or --set)")
    for path in sorted(set(mine["data"]) | set(theirs["data"])):
        if mine["data"].get(path) != theirs["data"].get(path):
            out.append(f"data file {path}")
    return out


def sync(s: Settings, config: dict[str, Any], data_files: dict[str, list[Path]]) -> str:
    """Node 0: publish its hashes. Another node: wait for node 0's and compare."""
    mine = {**fingerprint(config, data_files), "node_rank": s.node_rank, "host": socket.gethostname()}
    mine["written"] = time.time()
    write_atomic(node_file(s, s.node_rank), json.dumps(mine, indent=1) + "\n")
    if s.node_rank == 0:
        return f"node 0 of {s.nnodes}: hashes written to {node_file(s, 0)}"
    first = node_file(s, 0)
    info(f"node {s.node_rank}: waiting up to {s.node_sync_timeout} s for node 0's hashes in {first}")
    deadline = time.monotonic() + s.node_sync_timeout
    diff: list[str] = ["node 0 wrote no hashes"]
    theirs: dict[str, Any] = {}
    while time.monotonic() < deadline:
        theirs = read(first)
        # an older run's file may still be there: a difference waits for node 0 to write this run's
        if theirs:
            diff = differences(mine, theirs)
            if not diff:
                return f"node {s.node_rank}: recipe and {len(mine['data'])} data files match node 0"
        time.sleep(1)
    host = theirs.get("host", "?")
    raise UserError(
        f"node {s.node_rank} ({mine['host']}) differs from node 0 ({host}): {'; '.join(diff)}; give every node "
        f"the same recipe, .env and data (RUNS_DIR shared: {s.run_dir / 'nodes'}), then start them again"
    )


def read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
