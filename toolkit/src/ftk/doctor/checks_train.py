"""Train-stage checks on the host (the base model check is in checks_model; data sets, recipe and run folder
are checked by `ftk.train.preflight` once the recipe is rendered)."""

from __future__ import annotations

import time

from ftk import ports
from ftk.doctor import resources
from ftk.doctor.registry import Result, check, failed, passed
from ftk.settings import Settings
from ftk.train import nodes


@check("gpus", stage="train", order=20)
def train_gpus(s: Settings) -> Result:
    return resources.gpus("TRAIN_GPUS", s.train_gpus, s.allow_cpu, "training (TRAIN_GPUS)")


@check("disk", stage="train", order=30)
def runs_disk(s: Settings) -> Result:
    return resources.disk("TRAIN_MIN_FREE_MB", s.path("runs_dir"), s.train_min_free_mb)


@check("processes per node", stage="train", order=22)
def nproc_per_node(s: Settings) -> Result:
    if not nodes.uses_torchrun(s):
        return passed("one process (FORCE_TORCHRUN=false, NNODES=1)", f"NPROC_PER_NODE={s.nproc_per_node}")
    if s.train_gpus == 0:  # CPU: torchrun's processes share the cores through gloo
        return passed(f"{s.nproc_per_node} process(es) on CPU (gloo)", f"NPROC_PER_NODE={s.nproc_per_node}")
    return resources.gpus("NPROC_PER_NODE", s.nproc_per_node, s.allow_cpu, "each node (NPROC_PER_NODE)")


@check("rendezvous", stage="train", order=24)
def rendezvous(s: Settings) -> Result:
    """Node 0 binds MASTER_PORT; every other node must reach MASTER_ADDR:MASTER_PORT (node 0 started first: it
    listens once its own preflight passed, so this waits up to NODE_SYNC_TIMEOUT)."""
    item = f"MASTER_ADDR={s.master_addr} MASTER_PORT={s.master_port}"
    if not nodes.uses_torchrun(s):
        return passed("single process: no rendezvous", item)
    if s.nnodes == 1:
        return passed("one node: torchrun's rendezvous is local", item)
    if s.node_rank >= s.nnodes:
        return failed(f"NODE_RANK={s.node_rank} but NNODES={s.nnodes}", "ranks are 0 to NNODES-1", item)
    if s.node_rank == 0:
        return resources.port_free("MASTER_PORT", s.master_addr, s.master_port)
    deadline = time.monotonic() + s.node_sync_timeout
    while time.monotonic() < deadline:
        if ports.port_in_use(s.master_addr, s.master_port):
            return passed(f"node 0 listens on {s.master_addr}:{s.master_port}", item)
        time.sleep(1)
    return failed(
        f"node {s.node_rank} cannot reach {s.master_addr}:{s.master_port} within {s.node_sync_timeout} s",
        "start node 0 first; check MASTER_ADDR resolves from here and that the firewall lets MASTER_PORT through",
        item,
    )
