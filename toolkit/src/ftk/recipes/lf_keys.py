"""The keys LLaMA-Factory accepts in a recipe, and its templates, as a JSON file checked into the repository.

The JSON is generated from LLaMA-Factory's own argument dataclasses (run in the train venv):
    .venvs/train/bin/python -m ftk.recipes.lf_keys --write
so `ftk config render` can validate recipes from the toolkit venv without importing LLaMA-Factory.
`--check` (and a test) compares the file with the installed version.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ftk.files import write_atomic

KEYS_FILE = Path(__file__).with_name("llamafactory_keys.json")


def _type_name(tp: Any) -> str:
    """A coarse type for value checks: bool, int, float, str, list, dict or any."""
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin is typing.Literal:
        return "str"
    if origin is not None and args and origin not in (list, dict, tuple):
        # Optional[X] / Union[X, ...]: the first concrete member decides
        names = {_type_name(a) for a in args}
        if len(names) == 1:
            return names.pop()
        return "float" if names <= {"int", "float"} else "any"
    if origin in (list, tuple):
        return "list"
    if origin is dict:
        return "dict"
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if tp is t:
            return name
    if isinstance(tp, type) and issubclass(tp, str):  # enums of str
        return "str"
    return "any"


def dump() -> dict[str, Any]:
    """Keys and templates of the installed LLaMA-Factory (import it: train venv only)."""
    # LLaMA-Factory here only: `known()` reads the JSON in every venv
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import (
        DataArguments,
        FinetuningArguments,
        GeneratingArguments,
        ModelArguments,
        TrainingArguments,
    )

    keys: dict[str, dict[str, str]] = {}
    for cls in (ModelArguments, DataArguments, TrainingArguments, FinetuningArguments, GeneratingArguments):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.init and not f.name.startswith("_"):
                keys.setdefault(f.name, {"group": cls.__name__, "type": _type_name(hints.get(f.name, Any))})
    templates = {}
    for name, tpl in sorted(TEMPLATES.items()):
        plugin = type(tpl.mm_plugin).__name__
        templates[name] = {
            "multimodal": plugin != "BasePlugin",
            "plugin": plugin,
            "default_system": tpl.default_system or "",
        }
    return {
        "llamafactory": version("llamafactory"),
        "transformers": version("transformers"),
        "keys": dict(sorted(keys.items())),
        "templates": templates,
    }


@lru_cache(maxsize=1)
def known() -> dict[str, Any]:
    """The checked-in key list."""
    return json.loads(KEYS_FILE.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {KEYS_FILE.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from the install")
    args = parser.parse_args(argv)
    data = dump()
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    if args.write:
        write_atomic(KEYS_FILE, text, mode=0o644)
        print(
            f"wrote {KEYS_FILE} ({len(data['keys'])} keys, {len(data['templates'])} templates, "
            f"llamafactory {data['llamafactory']})"
        )
        return 0
    if args.check:
        if not KEYS_FILE.is_file() or json.loads(KEYS_FILE.read_text(encoding="utf-8")) != data:
            print(
                f"{KEYS_FILE} does not match llamafactory {data['llamafactory']}; "
                "run: .venvs/train/bin/python -m ftk.recipes.lf_keys --write",
                file=sys.stderr,
            )
            return 1
        print("ok")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
