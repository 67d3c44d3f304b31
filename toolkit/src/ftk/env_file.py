"""An env file checked against the settings: unknown keys (with the closest known key) and bad values, each
problem one line naming the file, the line and the fix. Used by `ftk env check` and the doctor."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values
from pydantic import ValidationError

from ftk.settings import Settings, closest_key, known_keys, validation_problems

# Keys that are read from the environment by tools the toolkit drives, not by the settings model.
PASSTHROUGH_KEYS = {
    "CUDA_VISIBLE_DEVICES",
    "NO_COLOR",
    "FTK_HOME",
    "FTK_ENV_FILE",
    "HF_HOME",
    "COMPOSE_PROFILES",
    "COMPOSE_PROJECT_NAME",
}


def _line_numbers(file: Path) -> dict[str, int]:
    numbers: dict[str, int] = {}
    for i, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            numbers.setdefault(line.removeprefix("export ").split("=", 1)[0].strip(), i)
    return numbers


def check_file(file: Path) -> list[str]:
    """Every problem in an env file, one line each, naming the key, the line and the fix."""
    if not file.is_file():
        return [f"{file}: no such file; copy .env.example to {file} and edit it"]
    problems: list[str] = []
    values = dotenv_values(file)
    lines = _line_numbers(file)
    known = set(known_keys())
    for key in values:
        if key.upper() not in known and key.upper() not in PASSTHROUGH_KEYS:
            hint = closest_key(key)
            fix = f"did you mean {hint}?" if hint else "remove it (see .env.example for the known keys)"
            problems.append(f"{file}:{lines.get(key, '?')}: {key}: unknown key; {fix}")
    clean = {k.lower(): v for k, v in values.items() if k.upper() in known and v is not None}
    try:
        Settings.model_validate(clean)
    except ValidationError as err:
        for key, text in validation_problems(err):
            problems.append(f"{file}:{lines.get(key, lines.get(key.lower(), '?'))}: {text}")
    return problems
