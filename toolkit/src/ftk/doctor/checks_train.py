"""Train-stage checks on the host (the base model check is in checks_model; data sets, recipe and run folder
are checked by `ftk.train.preflight` once the recipe is rendered)."""

from __future__ import annotations

from ftk.doctor import resources
from ftk.doctor.registry import Result, check
from ftk.settings import Settings


@check("gpus", stage="train", order=20)
def train_gpus(s: Settings) -> Result:
    return resources.gpus("TRAIN_GPUS", s.train_gpus, s.allow_cpu, "training (TRAIN_GPUS)")


@check("disk", stage="train", order=30)
def runs_disk(s: Settings) -> Result:
    return resources.disk("TRAIN_MIN_FREE_MB", s.path("runs_dir"), s.train_min_free_mb)
