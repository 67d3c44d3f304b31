"""The check registry: `@check(name, stage)` functions in `ftk.doctor.checks_*` modules, found automatically.

A check function takes the settings and returns one `Result` or several (a check may report each item it
looks at, e.g. one row per port). A check that raises is reported as FAIL, never as a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from ftk.settings import Settings

Status = Literal["PASS", "WARN", "FAIL"]


@dataclass(frozen=True)
class Result:
    status: Status
    detail: str
    fix: str = ""
    item: str = ""  # set when one check reports several rows (a port, a venv, a tool)


def passed(detail: str, item: str = "") -> Result:
    return Result("PASS", detail, "", item)


def warned(detail: str, fix: str, item: str = "") -> Result:
    return Result("WARN", detail, fix, item)


def failed(detail: str, fix: str, item: str = "") -> Result:
    return Result("FAIL", detail, fix, item)


CheckFn = Callable[[Settings], "Result | Iterable[Result]"]


@dataclass(frozen=True)
class Check:
    name: str
    stage: str
    func: CheckFn
    order: int


@dataclass(frozen=True)
class Row:
    stage: str
    check: str
    status: Status
    detail: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


_REGISTRY: dict[tuple[str, str], Check] = {}


def check(name: str, stage: str = "host", order: int = 50) -> Callable[[CheckFn], CheckFn]:
    """Register a check; `order` sorts checks within a stage (lower first)."""

    def decorate(func: CheckFn) -> CheckFn:
        key = (stage, name)
        existing = _REGISTRY.get(key)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(
                f"doctor check {stage}/{name} is registered twice ({existing.func.__module__} and "
                f"{func.__module__}); give one of them another name"
            )
        _REGISTRY[key] = Check(name, stage, func, order)
        return func

    return decorate


def discover(package: str = "ftk.doctor") -> list[Check]:
    """Import every `checks_*` module of `package`, then return the registered checks in run order."""
    pkg = importlib.import_module(package)
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("checks_"):
            importlib.import_module(f"{package}.{mod.name}")
    return registered()


def registered() -> list[Check]:
    stage_rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    return sorted(
        _REGISTRY.values(),
        key=lambda c: (stage_rank.get(c.stage, len(STAGE_ORDER)), c.stage, c.order, c.name),
    )


# The pipeline order, so the table reads top to bottom like the stages run; unknown stages go last.
STAGE_ORDER = (
    "host",
    "setup",
    "model",
    "download",
    "dataset",
    "train",
    "merge",
    "serve",
    "gateway",
    "monitor",
)


def run(settings: Settings, checks: Iterable[Check], stages: set[str] | None = None) -> list[Row]:
    rows: list[Row] = []
    for c in checks:
        if stages and c.stage not in stages:
            continue
        try:
            out = c.func(settings)
            results = [out] if isinstance(out, Result) else list(out)
        except Exception as err:  # a broken check must not hide the others
            results = [
                failed(
                    f"the check itself failed: {type(err).__name__}: {err}",
                    "report this; the other checks still ran",
                )
            ]
        for r in results:
            name = f"{c.name}: {r.item}" if r.item else c.name
            rows.append(Row(c.stage, name, r.status, r.detail, r.fix))
    return rows
