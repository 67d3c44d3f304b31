"""LLaMA-Factory's data conventions (llamafactory 0.9.5 `data/parser.py` and `data/converter.py`).

alpaca: `instruction` (+ optional `input`) is the user turn, `output` the answer; optional `system`, `history`
(list of [prompt, response] pairs), `images`/`videos`/`audios`.
sharegpt: a list of messages in `conversations` (tags `from`/`value`, roles
human/gpt/observation/function_call, optional first `system` message) or in `messages` (OpenAI style:
`role`/`content`, user/assistant/system); optional `system` and `tools` columns and
`images`/`videos`/`audios`. After an optional system message, user or observation turns sit at odd positions
and assistant or function_call turns at even ones, so a conversation has an even number of turns and ends on
the assistant side.

Stages read different kinds of data (`Layout.kind`): `sft` (a prompt and one answer), `pairwise` (`ranking: true`
with `chosen`/`rejected`: strings in alpaca, assistant messages in sharegpt, whose conversation then ends on the
user side), `kto` (a `kto_tag` column holding a JSON boolean) and `pretrain` (alpaca with only a text column,
`columns: {"prompt": "text"}`, or a .txt file). `STAGE_KINDS` says which kind each LLaMA-Factory stage needs.

Registration must spell every column and tag out: when an entry has `columns` (or `tags`), LLaMA-Factory sets
each one it does not find to None instead of its default. Without `columns`, only prompt/query/response
(alpaca) or messages (sharegpt) are read: a `system`, `history`, `tools` or media column is then ignored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["alpaca", "sharegpt"]
FORMATS: tuple[Format, ...] = ("alpaca", "sharegpt")

MEDIA_COLUMNS = ("images", "videos", "audios")
PLACEHOLDERS = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}

PREFERENCE_COLUMNS = ("chosen", "rejected")
ALPACA_COLUMNS = ("instruction", "input", "output", "system", "history", *MEDIA_COLUMNS, *PREFERENCE_COLUMNS)
SHAREGPT_COLUMNS = ("conversations", "messages", "system", "tools", *MEDIA_COLUMNS, *PREFERENCE_COLUMNS)

Kind = Literal["sft", "pairwise", "kto", "pretrain"]
# The data kind each LLaMA-Factory stage trains on (dpo, orpo and simpo are `stage: dpo` with a `pref_loss`).
STAGE_KINDS: dict[str, Kind] = {"sft": "sft", "pt": "pretrain", "dpo": "pairwise", "rm": "pairwise", "kto": "kto"}
KIND_HELP: dict[Kind, str] = {
    "sft": "prompt and answer (alpaca instruction/output, or a sharegpt conversation ending with the assistant)",
    "pairwise": "preference pairs (ranking: true with chosen/rejected columns)",
    "kto": "answers tagged desirable or not (a kto_tag column of JSON booleans)",
    "pretrain": 'plain text (columns: {"prompt": "text"}, or a .txt file)',
}
KNOWN_COLUMNS = tuple(dict.fromkeys(ALPACA_COLUMNS + SHAREGPT_COLUMNS))

# Names people use for the columns LLaMA-Factory knows, mapped to the right one (difflib catches typos).
COLUMN_ALIASES = {
    "prompt": "instruction",
    "question": "instruction",
    "query": "input",
    "context": "input",
    "response": "output",
    "answer": "output",
    "completion": "output",
    "target": "output",
    "conversation": "conversations",
    "dialog": "conversations",
    "dialogue": "conversations",
    "chat": "messages",
    "image": "images",
    "img": "images",
    "imgs": "images",
    "image_path": "images",
    "video": "videos",
    "audio": "audios",
    "system_prompt": "system",
    "tool": "tools",
    "functions": "tools",
}


@dataclass(frozen=True)
class TagStyle:
    """How one message is spelled: its keys and its role names (LLaMA-Factory's `tags`)."""

    role_tag: str
    content_tag: str
    user_tag: str
    assistant_tag: str
    observation_tag: str
    function_tag: str
    system_tag: str

    @property
    def user_side(self) -> tuple[str, str]:
        return (self.user_tag, self.observation_tag)

    @property
    def assistant_side(self) -> tuple[str, str]:
        return (self.assistant_tag, self.function_tag)

    @property
    def roles(self) -> tuple[str, ...]:
        return (self.user_tag, self.assistant_tag, self.observation_tag, self.function_tag, self.system_tag)

    def as_tags(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


SHAREGPT_STYLE = TagStyle("from", "value", "human", "gpt", "observation", "function_call", "system")
OPENAI_STYLE = TagStyle("role", "content", "user", "assistant", "observation", "function_call", "system")
OPENAI_TOOL_STYLE = TagStyle("role", "content", "user", "assistant", "tool", "function_call", "system")

# Role names from other conventions, mapped per style to the right one.
ROLE_ALIASES = {
    "from": {
        "user": "human",
        "assistant": "gpt",
        "bot": "gpt",
        "model": "gpt",
        "chatgpt": "gpt",
        "tool": "observation",
        "function": "function_call",
        "developer": "system",
    },
    "role": {
        "human": "user",
        "gpt": "assistant",
        "bot": "assistant",
        "model": "assistant",
        "chatgpt": "assistant",
        "function": "function_call",
        "developer": "system",
        "tool": "observation",
        "observation": "tool",
    },
}


@dataclass
class Layout:
    """The column names and tags of one file; fixed by its first sample (or by its dataset_info entry)."""

    format: Format
    messages: str = "conversations"  # sharegpt: the message list column
    style: TagStyle = SHAREGPT_STYLE
    prompt: str = "instruction"  # alpaca columns
    query: str | None = "input"
    response: str | None = "output"  # None: pre-training text (only `prompt` is read)
    history: str | None = "history"
    system: str | None = "system"  # None (a dataset_info entry that does not map it): LLaMA-Factory ignores it
    tools: str | None = "tools"
    media: dict[str, str] = field(default_factory=lambda: {c: c for c in MEDIA_COLUMNS})
    ranking: bool = False
    chosen: str = "chosen"
    rejected: str = "rejected"
    kto_tag: str | None = None
    seen: set[str] = field(default_factory=set)  # optional columns seen in some sample (for registration)
    fixed: bool = False  # True when the layout comes from a dataset_info entry: nothing is inferred

    @property
    def kind(self) -> Kind:
        if self.ranking:
            return "pairwise"
        if self.kto_tag:
            return "kto"
        if self.format == "alpaca" and self.response is None:
            return "pretrain"
        return "sft"

    def columns(self) -> tuple[str, ...]:
        """The columns LLaMA-Factory reads with this layout."""
        extra = [*self.media.values(), *((self.chosen, self.rejected) if self.ranking else ()), self.kto_tag]
        if self.format == "alpaca":
            cols = [self.prompt, self.query, self.response, self.system, self.history, *extra]
        else:
            cols = [self.messages, self.system, self.tools, *extra]
        return tuple(c for c in cols if c)

    def entry(self) -> dict[str, Any]:
        """The `formatting`/`columns`/`tags` part of a dataset_info.json entry for this layout."""
        optional = {"system": self.system, "tools": self.tools, "history": self.history, **self.media}
        if self.format == "alpaca":
            # a column the entry names must exist in the file (LLaMA-Factory raises KeyError otherwise)
            columns: dict[str, Any] = {"prompt": self.prompt, "response": self.response}
            if self.kind == "pretrain" or self.ranking:
                columns = {"prompt": self.prompt}
            optional["query"] = self.query
            optional.pop("tools")
        else:
            columns = {"messages": self.messages}
            optional.pop("history")
        columns.update({k: v for k, v in optional.items() if v and v in self.seen})
        if self.ranking:
            columns.update(chosen=self.chosen, rejected=self.rejected)
        if self.kto_tag:
            columns["kto_tag"] = self.kto_tag
        entry: dict[str, Any] = {"formatting": self.format}
        if self.ranking:
            entry["ranking"] = True
        entry["columns"] = columns
        if self.format == "sharegpt":
            entry["tags"] = self.style.as_tags()
        return entry


def layout_from_entry(entry: dict[str, Any]) -> Layout:
    """The layout a dataset_info.json entry describes, read as LLaMA-Factory's `DatasetAttr.join` reads it: with
    `columns`, every column it does not name is None; without, only the defaults of prompt/query/response
    (alpaca) and messages (sharegpt) are set."""
    fmt = entry.get("formatting", "alpaca")
    layout = Layout(format=fmt if fmt in FORMATS else "sharegpt", fixed=True)
    layout.ranking = entry.get("ranking") is True
    layout.system = layout.tools = layout.history = None
    if "columns" in entry:
        cols = entry.get("columns") if isinstance(entry.get("columns"), dict) else {}
        for key in ("prompt", "query", "response", "history", "messages", "system", "tools", "kto_tag"):
            value = cols.get(key)
            setattr(layout, key, value if isinstance(value, str) and value else None)
        if layout.prompt is None:
            layout.prompt = ""
        layout.chosen = str(cols.get("chosen") or "")
        layout.rejected = str(cols.get("rejected") or "")
    else:
        cols = {}
    layout.media = {c: cols[c] for c in MEDIA_COLUMNS if cols.get(c)}
    tags = entry.get("tags")
    if tags:
        base = SHAREGPT_STYLE.as_tags()
        base.update({k: v for k, v in tags.items() if k in base and isinstance(v, str)})
        layout.style = TagStyle(**base)
    return layout


def detect_format(sample: dict[str, Any]) -> Format | None:
    """alpaca or sharegpt from the keys of one sample, typos included; None when nothing fits."""
    keys = set(sample)
    if keys == {"text"}:
        return "alpaca"  # pre-training text
    if keys & {"conversations", "messages"}:
        return "sharegpt"
    if keys & {"instruction", "output"}:
        return "alpaca"
    fixed = {closest(k, KNOWN_COLUMNS, COLUMN_ALIASES) for k in keys}
    if fixed & {"conversations", "messages"}:
        return "sharegpt"
    if fixed & {"instruction", "output", "input"}:
        return "alpaca"
    return None


def detect_kind(sample: dict[str, Any], layout: Layout) -> None:
    """Fill the kind-specific part of an inferred layout from the first sample."""
    if layout.format == "alpaca" and set(sample) == {"text"}:
        layout.prompt, layout.query, layout.response = "text", None, None
        return
    if "chosen" in sample and "rejected" in sample:
        layout.ranking = True
        return
    for tag in KTO_TAG_NAMES:
        if tag in sample and isinstance(sample[tag], bool):
            layout.kto_tag = tag
            return


KTO_TAG_NAMES = ("kto_tag", "label")


def detect_style(message: dict[str, Any]) -> TagStyle:
    """The tag style of a message: `role`/`content` (OpenAI) or `from`/`value` (sharegpt, the default)."""
    if "role" in message or "content" in message:
        return OPENAI_TOOL_STYLE if message.get("role") == "tool" else OPENAI_STYLE
    return SHAREGPT_STYLE


def closest(name: str, choices: tuple[str, ...] | list[str], aliases: dict[str, str] | None = None) -> str | None:
    """The valid name the user most likely meant (alias table first, then spelling), or None."""
    low = name.strip().lower()
    if aliases and low in aliases and aliases[low] in choices:
        return aliases[low]
    if low in choices and low != name:
        return low
    match = difflib.get_close_matches(low, list(choices), n=1, cutoff=0.7)
    return match[0] if match else None
