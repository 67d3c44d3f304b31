"""A gateway key's policy: which models it may use and the caps and limits on its requests.

Stored as FIELD=VALUE tokens after a key's line in API_KEYS_FILE (ftk.gateway.keys). Every field is optional: an
unset cap falls back to the gateway-wide one of the settings (GATEWAY_MAX_N, ...), an unset limit to RATE_LIMIT_RPS,
RATE_LIMIT_BURST and MAX_CONNS_PER_KEY, and no `models` means every model, as before policies existed. The gateway
(njs, docker/nginx/templates/njs/ftk_policy.js) reads the effective policy as JSON from an nginx map by key id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, replace

from ftk.console import UserError
from ftk.settings import Settings

GLOB_RE = re.compile(r"^[A-Za-z0-9._:/@+*?-]{1,128}$")  # nothing nginx's quoted map value or JSON would read
CAPS = ("max_tokens", "n", "images")  # checked by njs on the request body
LIMITS = ("rps", "burst", "conns")  # nginx's limit_req / limit_conn
WHOLE = (*CAPS, *LIMITS)
HELP = {
    "models": "comma-separated globs over base model and adapter names (* and ?), e.g. base,support-*",
    "max_tokens": "largest max_tokens / max_completion_tokens / max_output_tokens (also sent when a request omits it)",
    "n": "largest n and best_of",
    "images": "most images in one request",
    "rps": "requests per second (replaces RATE_LIMIT_RPS for this key)",
    "burst": "requests above the rate a key may burst before 429 (replaces RATE_LIMIT_BURST)",
    "conns": "concurrent requests (replaces MAX_CONNS_PER_KEY)",
}


@dataclass(frozen=True)
class Policy:
    models: tuple[str, ...] | None = None  # None: every model
    max_tokens: int | None = None
    n: int | None = None
    images: int | None = None
    rps: int | None = None
    burst: int | None = None
    conns: int | None = None

    @classmethod
    def parse(cls, tokens: list[str], where: str) -> Policy:
        """FIELD=VALUE tokens of a key line; an unknown field or a bad value names the place and the fix."""
        values: dict[str, str] = {}
        for token in tokens:
            name, sep, value = token.partition("=")
            if not sep:
                raise UserError(f"{where}: '{token}' is not FIELD=VALUE; fields: {', '.join(HELP)}")
            values[name] = value
        return cls().updated(values, where)

    def updated(self, changes: dict[str, str], where: str) -> Policy:
        """A copy with FIELD: VALUE applied (an empty VALUE clears the field)."""
        new = {}
        for name, value in changes.items():
            if name not in HELP:
                raise UserError(f"{where}: unknown policy field '{name}'; fields: {', '.join(HELP)}")
            new[name] = None if value == "" else _value(name, value, where)
        return replace(self, **new)

    def tokens(self) -> list[str]:
        """The FIELD=VALUE tokens of the key file, set fields only."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out.append(f"{f.name}={','.join(value) if f.name == 'models' else value}")
        return out

    def describe(self, field: str) -> str:
        value = getattr(self, field)
        if value is None:
            return "all" if field == "models" else "-"
        return ", ".join(value) if field == "models" else str(value)

    def effective(self, s: Settings) -> dict[str, object]:
        """What njs enforces for this key: its own caps, else the gateway-wide ones (0: no cap)."""
        return {
            "models": None if self.models is None else [glob_regex(g) for g in self.models],
            "globs": None if self.models is None else list(self.models),
            "max_tokens": self.max_tokens if self.max_tokens is not None else s.gateway_max_tokens,
            "n": self.n if self.n is not None else s.gateway_max_n,
            "images": self.images if self.images is not None else s.gateway_max_images,
        }

    def effective_json(self, s: Settings) -> str:
        return json.dumps(self.effective(s), separators=(",", ":"))


def _value(name: str, value: str, where: str) -> object:
    if name == "models":
        globs = tuple(g for g in value.split(",") if g)
        bad = [g for g in globs if not GLOB_RE.match(g)]
        if bad or not globs:
            raise UserError(
                f"{where}: models='{value}': each glob must be 1-128 characters of A-Z a-z 0-9 . _ : / @ + - * ?, "
                "comma-separated, e.g. models=base,support-*"
            )
        return globs
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{where}: {name}='{value}' must be a whole number >= 1 ({HELP[name]})")
    return int(value)


def glob_regex(glob: str) -> str:
    """A regular expression (JavaScript and Python alike) for a glob of * and ?, which njs anchors at both ends.
    No backslash and no $: it travels inside JSON inside an nginx quoted string, where nginx would read both."""
    return "".join({"*": ".*", "?": ".", ".": "[.]", "+": "[+]"}.get(c, c) for c in glob)
