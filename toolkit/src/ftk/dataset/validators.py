"""Check one sample against the layout of its file, reporting every problem with the field it is in.

The rules are the ones LLaMA-Factory applies when it loads the data (it drops or refuses a sample that breaks
them, often with only a warning): see `ftk.dataset.formats` for the conventions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ftk.dataset.formats import (
    COLUMN_ALIASES,
    KNOWN_COLUMNS,
    KTO_TAG_NAMES,
    OPENAI_STYLE,
    OPENAI_TOOL_STYLE,
    PLACEHOLDERS,
    ROLE_ALIASES,
    Format,
    Layout,
    closest,
    detect_format,
    detect_kind,
    detect_style,
)
from ftk.dataset.media import MediaChecker

Emit = Callable[[str, str, str, str], None]  # (field, kind, what is wrong, how to fix)
Turns = tuple[str, list[tuple[str, str]]]  # (system prompt, [(role, text)]) for token counting


class SampleValidator:
    def __init__(self, layout: Layout | None, forced: Format | None, media: MediaChecker) -> None:
        self.layout = layout
        self.forced = forced
        self.media = media

    def check(self, sample: Any, emit: Emit) -> Turns | None:
        if not isinstance(sample, dict):
            emit(
                "sample",
                "column",
                f"is a JSON {_type(sample)}, not an object",
                'write each sample as an object like {"instruction": ..., "output": ...}',
            )
            return None
        if self.layout is None and not self._infer(sample, emit):
            return None
        layout = self.layout
        assert layout is not None
        self._check_keys(sample, layout, emit)
        layout.seen.update(k for k in sample if k in layout.columns())
        if layout.kto_tag:
            self._kto_tag(sample, layout, emit)
        if layout.kind == "pretrain":
            turns = self._pretrain(sample, layout, emit)
        elif layout.format == "alpaca":
            turns = self._alpaca(sample, layout, emit)
        else:
            turns = self._sharegpt(sample, layout, emit)
        if turns is not None:
            self._check_media(sample, layout, turns[1], emit)
        return turns

    # --- layout of the file --------------------------------------------------------------------------
    def _infer(self, sample: dict[str, Any], emit: Emit) -> bool:
        fmt = self.forced or detect_format(sample)
        if fmt is None:
            keys = ", ".join(sorted(sample)) or "none"
            emit(
                "sample",
                "column",
                f"no alpaca or sharegpt columns (keys: {keys})",
                "use instruction/input/output (alpaca) or conversations / messages (sharegpt)",
            )
            return False
        layout = Layout(format=fmt)
        detect_kind(sample, layout)
        if fmt == "sharegpt":
            if "messages" in sample and "conversations" not in sample:
                layout.messages = "messages"
            msgs = sample.get(layout.messages)
            if isinstance(msgs, list) and msgs and isinstance(msgs[0], dict):
                layout.style = detect_style(msgs[0])
        self.layout = layout
        return True

    def _check_keys(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> None:
        """Columns LLaMA-Factory would silently ignore because their name is slightly off."""
        columns = layout.columns()
        required = (layout.messages,) if layout.format == "sharegpt" else (layout.prompt, layout.response)
        for key in sample:
            if key in columns:
                continue
            known = key in KNOWN_COLUMNS or key in KTO_TAG_NAMES
            if layout.fixed and known and key not in ("messages", "conversations"):
                emit(
                    key,
                    "column",
                    f"column '{key}' is in the data but its dataset_info.json entry does not map it, so "
                    "LLaMA-Factory ignores it",
                    f"add it to the entry's columns (register the file again with ftk dataset register), "
                    f"or drop '{key}' from the data",
                )
                continue
            target = closest(key, columns, COLUMN_ALIASES)
            if target in required and target not in sample:
                continue  # reported as a missing column, with the rename as its fix
            if target and target not in sample:
                emit(key, "column", f"column '{key}' is not read by LLaMA-Factory", f"rename it to '{target}'")
            elif key in ("conversations", "messages") and layout.format == "sharegpt":
                emit(
                    key,
                    "column",
                    f"this file keeps its messages in '{layout.messages}' (its first sample)",
                    f"use '{layout.messages}' in every sample",
                )

    def _require(self, sample: dict[str, Any], column: str, emit: Emit) -> bool:
        if column in sample:
            return True
        near = [k for k in sample if closest(k, (column,), COLUMN_ALIASES) == column]
        fix = f"rename '{near[0]}' to '{column}'" if near else f"add a '{column}' column"
        emit(column, "column", f"missing column '{column}'", fix)
        return False

    # --- alpaca --------------------------------------------------------------------------------------
    def _alpaca(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> Turns | None:
        turns: list[tuple[str, str]] = []
        for pair in self._history(sample, layout, emit):
            turns += [("user", pair[0]), ("assistant", pair[1])]
        has_prompt = self._require(sample, layout.prompt, emit)
        prompt = _text(sample, layout.prompt, emit, required=True) if has_prompt else ""
        query = _text(sample, layout.query, emit, required=False) if layout.query else ""
        if has_prompt and prompt is not None and query is not None and not (prompt.strip() or query.strip()):
            emit(
                layout.prompt,
                "blank",
                f"empty user turn ('{layout.prompt}'{f' and {layout.query!r}' if layout.query else ''} empty)",
                "write the instruction or remove the sample",
            )
        system = self._system(sample, layout, emit)
        user = "\n".join(t for t in (prompt, query) if t)
        turns.append(("user", user))
        if layout.ranking:
            answers = [self._answer(sample, col, emit) for col in (layout.chosen, layout.rejected)]
            return system, [*turns, ("assistant", max((a or "" for a in answers), key=len))]
        response = self._answer(sample, layout.response or "output", emit)
        turns.append(("assistant", response or ""))
        return system, turns

    def _answer(self, sample: dict[str, Any], column: str, emit: Emit) -> str | None:
        if not self._require(sample, column, emit):
            return None
        response = _text(sample, column, emit, required=True)
        if response is not None and not response.strip():
            emit(column, "blank", "empty answer", "write the answer the model should learn")
        return response

    # --- pre-training text and KTO ---------------------------------------------------------------------
    def _pretrain(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> Turns | None:
        if not self._require(sample, layout.prompt, emit):
            return None
        text = _text(sample, layout.prompt, emit, required=True)
        if text is not None and not text.strip():
            emit(layout.prompt, "blank", "empty text", "drop the empty sample (it trains on an end-of-text token only)")
        return "", [("text", text or "")]

    def _kto_tag(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> None:
        tag = layout.kto_tag or ""
        value = sample.get(tag)
        if not isinstance(value, bool):
            shown = "missing" if tag not in sample else f"a {_type(value)} ({json.dumps(value)[:20]})"
            emit(
                tag,
                "column",
                f"the KTO tag '{tag}' is {shown}, not a JSON boolean, so LLaMA-Factory drops the sample",
                f"write {tag}: true for a desirable answer, false for an undesirable one",
            )

    def _history(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> list[tuple[str, str]]:
        history = sample.get(layout.history)
        if history is None:
            return []
        layout.seen.add(layout.history)
        if not isinstance(history, list):
            emit(
                layout.history,
                "column",
                f"is a {_type(history)}, not a list of [prompt, response] pairs",
                'write it as [["question", "answer"], ...]',
            )
            return []
        pairs = []
        for i, pair in enumerate(history):
            field = f"{layout.history}[{i}]"
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                emit(
                    field,
                    "column",
                    "is not a [prompt, response] pair of strings",
                    'write ["question", "answer"]',
                )
                continue
            for j, text in enumerate(pair):
                if not text.strip():
                    emit(
                        f"{field}[{j}]",
                        "blank",
                        "empty turn in the history",
                        "write the text or drop the pair",
                    )
            pairs.append((pair[0], pair[1]))
        return pairs

    def _system(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> str:
        if layout.system not in sample:
            return ""
        layout.seen.add(layout.system)
        value = sample[layout.system]
        if value is None:
            return ""
        if not isinstance(value, str):
            emit(
                layout.system,
                "column",
                f"is a {_type(value)}, not a string",
                "write the system prompt as text",
            )
            return ""
        if not value.strip():
            emit(
                layout.system,
                "blank",
                "empty system prompt",
                "write the system prompt or drop the column (an empty one trains without any)",
            )
        return value

    # --- sharegpt ------------------------------------------------------------------------------------
    def _sharegpt(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> Turns | None:
        col = layout.messages or ""
        if not self._require(sample, col, emit):
            return None
        msgs = sample[col]
        if not isinstance(msgs, list):
            emit(
                col,
                "column",
                f"is a {_type(msgs)}, not a list of messages",
                f'write [{{"{layout.style.role_tag}": ..., "{layout.style.content_tag}": ...}}, ...]',
            )
            return None
        if not msgs:
            emit(col, "empty", "no messages", "add a user turn and the assistant's answer, or drop the sample")
            return None
        system = self._system(sample, layout, emit)
        self._tools(sample, layout, emit)
        turns: list[tuple[str, str]] = []
        order_ok = True
        last_role = None
        for i, msg in enumerate(msgs):
            field = f"{col}[{i}]"
            role, content = self._message(msg, field, layout, emit)
            style = layout.style
            if role == style.system_tag:
                if i == 0:
                    system = content or ""
                else:
                    emit(
                        f"{field}.{style.role_tag}",
                        "order",
                        "a system message after the first message",
                        "move the system prompt to the first message (or the 'system' column)",
                    )
                    order_ok = False
                continue
            if role is not None and order_ok:
                expected = style.user_side if len(turns) % 2 == 0 else style.assistant_side
                if role not in expected:
                    emit(
                        f"{field}.{style.role_tag}",
                        "order",
                        f"'{role}' where a {'/'.join(expected)} turn must come",
                        f"alternate {style.user_tag} and {style.assistant_tag} turns (after an optional "
                        f"first {style.system_tag} message)",
                    )
                    order_ok = False
            if role == style.function_tag and content is not None:
                self._function_call(content, f"{field}.{style.content_tag}", emit)
            turns.append((role or "?", content or ""))
            last_role = role
        style = layout.style
        if not turns:
            emit(col, "empty", "only a system message", "add a user turn and the assistant's answer")
        elif layout.ranking:
            if last_role is not None and last_role not in style.user_side:
                emit(
                    f"{col}[{len(msgs) - 1}]",
                    "ending",
                    f"a preference sample's conversation ends with a '{last_role}' turn, so LLaMA-Factory "
                    "drops it (chosen and rejected are the answers to its last user turn)",
                    f"end '{col}' with the {style.user_tag} turn and put the answers in "
                    f"'{layout.chosen}' and '{layout.rejected}'",
                )
            answers = [self._preferred(sample, c, layout, emit) for c in (layout.chosen, layout.rejected)]
            turns.append((style.assistant_tag, max((a or "" for a in answers), key=len)))
        elif last_role is not None and last_role not in style.assistant_side:
            emit(
                f"{col}[{len(msgs) - 1}]",
                "ending",
                f"the conversation ends with a '{last_role}' turn",
                f"end it with the {style.assistant_tag} answer to learn (or drop the last turn)",
            )
        return system, turns

    def _preferred(self, sample: dict[str, Any], column: str, layout: Layout, emit: Emit) -> str | None:
        """One answer of a sharegpt preference pair: a single assistant message."""
        if not self._require(sample, column, emit):
            return None
        style = layout.style
        msg = sample[column]
        if not isinstance(msg, dict):
            emit(
                column,
                "column",
                f"is a {_type(msg)}, not one message object, so LLaMA-Factory drops the sample",
                f'write {{"{style.role_tag}": "{style.assistant_tag}", "{style.content_tag}": "..."}}',
            )
            return None
        role, content = self._message(msg, column, layout, emit)
        if role is not None and role not in style.assistant_side:
            emit(
                f"{column}.{style.role_tag}",
                "role",
                f"'{role}' where the {style.assistant_tag} answer must be",
                f"use '{style.assistant_tag}' (or '{style.function_tag}')",
            )
        return content

    def _function_call(self, content: str, field: str, emit: Emit) -> None:
        """LLaMA-Factory parses a function_call turn as JSON {"name", "arguments"} (or a list of them)."""
        try:
            calls = json.loads(content)
        except json.JSONDecodeError as err:
            emit(
                field,
                "tool",
                f"a function call that is not valid JSON ({err.msg}); LLaMA-Factory stops with "
                "'Invalid JSON format in function message'",
                'write {"name": "...", "arguments": {...}} (or a list of them)',
            )
            return
        for call in calls if isinstance(calls, list) else [calls]:
            if not (isinstance(call, dict) and "name" in call and "arguments" in call):
                emit(
                    field,
                    "tool",
                    "a function call without 'name' and 'arguments'; LLaMA-Factory stops on it",
                    'write {"name": "...", "arguments": {...}}',
                )
                return

    def _message(self, msg: Any, field: str, layout: Layout, emit: Emit) -> tuple[str | None, str | None]:
        style = layout.style
        if not isinstance(msg, dict):
            emit(
                field,
                "column",
                f"is a {_type(msg)}, not a message object",
                f'write {{"{style.role_tag}": ..., "{style.content_tag}": ...}}',
            )
            return None, None
        role = msg.get(style.role_tag)
        if style.role_tag not in msg:
            self._missing_key(msg, field, style.role_tag, (style.role_tag, style.content_tag), emit)
        elif not isinstance(role, str) or role not in style.roles:
            role = self._fix_role(role, field, layout, emit)
        elif role == style.observation_tag:
            layout.seen.add(role)
        content = msg.get(style.content_tag)
        if style.content_tag not in msg:
            self._missing_key(msg, field, style.content_tag, (style.role_tag, style.content_tag), emit)
        elif isinstance(content, list):
            emit(
                f"{field}.{style.content_tag}",
                "column",
                "is a list of content parts (LLaMA-Factory's v1 data format, USE_V1=1); the trainer "
                "train.sh runs needs a string and stops on it",
                "join the text parts into one string (images go in the 'images' column with <image> in the text)",
            )
            content = None
        elif not isinstance(content, str):
            emit(
                f"{field}.{style.content_tag}",
                "column",
                f"is a {_type(content)}, not a string",
                "write the turn's text as a string",
            )
            content = None
        elif not content.strip():
            emit(
                f"{field}.{style.content_tag}",
                "blank",
                "empty turn",
                "write the turn's text, or drop this turn and its answer",
            )
        return role, content

    def _missing_key(self, msg: dict[str, Any], field: str, key: str, keys: tuple[str, str], emit: Emit) -> None:
        near = [k for k in msg if k not in keys and closest(k, (key,)) == key]
        other = {"role": "from", "from": "role", "content": "value", "value": "content"}.get(key)
        if near:
            fix = f"rename '{near[0]}' to '{key}'"
        elif other in msg:
            fix = f"this file uses '{keys[0]}'/'{keys[1]}' (like its first message); use them in every message"
        else:
            fix = f"add a '{key}' key"
        emit(f"{field}.{key}", "role", f"no '{key}' key in the message", fix)

    def _fix_role(self, role: Any, field: str, layout: Layout, emit: Emit) -> str | None:
        style = layout.style
        # OpenAI-style files may call tool results 'tool', not 'observation': adopt it when it comes first.
        if role == "tool" and style is OPENAI_STYLE and not layout.fixed and "observation" not in layout.seen:
            layout.style = OPENAI_TOOL_STYLE
            return role
        hint = closest(str(role), style.roles, ROLE_ALIASES.get(style.role_tag))
        fix = f"use '{hint}'" if hint else f"use one of {', '.join(style.roles)}"
        emit(
            f"{field}.{style.role_tag}",
            "role",
            f"unknown role '{role}'",
            f"{fix} (this file uses the {style.role_tag}/{style.content_tag} tags)",
        )
        return None

    def _tools(self, sample: dict[str, Any], layout: Layout, emit: Emit) -> None:
        if layout.tools not in sample or sample[layout.tools] in (None, ""):
            return
        layout.seen.add(layout.tools)
        tools = sample[layout.tools]
        if not isinstance(tools, str):
            emit(
                layout.tools,
                "column",
                f"is a {_type(tools)}, not a string",
                "write the tool list as a JSON string (json.dumps of the list)",
            )
            return
        try:
            parsed = json.loads(tools)
        except json.JSONDecodeError as err:
            emit(
                layout.tools,
                "column",
                f"is not valid JSON ({err.msg})",
                "write a JSON list of tool definitions",
            )
            return
        for i, tool in enumerate(parsed if isinstance(parsed, list) else [parsed]):
            spec = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else tool
            params = spec.get("parameters") if isinstance(spec, dict) else None
            if not (isinstance(spec, dict) and "name" in spec and isinstance(params, dict) and "properties" in params):
                emit(
                    f"{layout.tools}[{i}]",
                    "tool",
                    "a tool without 'name' and 'parameters.properties'; LLaMA-Factory's tool formats stop on it",
                    'write {"name": ..., "description": ..., "parameters": {"type": "object", "properties": {...}}}',
                )
                return

    # --- media ---------------------------------------------------------------------------------------
    def _check_media(self, sample: dict[str, Any], layout: Layout, turns: list[tuple[str, str]], emit: Emit) -> None:
        for key, col in layout.media.items():
            items = sample.get(col)
            tag = PLACEHOLDERS[key]
            n_tags = sum(text.count(tag) for _, text in turns) if any(tag in t for _, t in turns) else 0
            if items is None:
                items = []
            elif not isinstance(items, list):
                emit(
                    col,
                    "column",
                    f"is a {_type(items)}, not a list of paths",
                    f"write [\"path\", ...] in '{col}'",
                )
                continue
            else:
                layout.seen.add(col)
            if n_tags != len(items):
                noun = key[:-1]
                emit(
                    col,
                    "placeholder",
                    f"{n_tags} {tag} placeholder(s) in the turns but {len(items)} {noun}(s) in '{col}'",
                    f"put one {tag} in the user turns for each {noun} (LLaMA-Factory refuses the sample otherwise)",
                )
            for i, item in enumerate(items):
                frames = item if (key == "videos" and isinstance(item, list)) else None
                for j, path in enumerate(frames if frames is not None else [item]):
                    field = f"{col}[{i}]" + (f"[{j}]" if frames is not None else "")
                    if not isinstance(path, str):
                        emit(
                            field,
                            "column",
                            f"is a {_type(path)}, not a path",
                            "write the file's path as a string",
                        )
                        continue
                    bad = self.media.check(path, image=key == "images" or frames is not None)
                    if bad:
                        emit(field, "media", *bad)


def _text(sample: dict[str, Any], column: str, emit: Emit, required: bool) -> str | None:
    value = sample.get(column)
    if value is None:
        return "" if not required or column in sample else None
    if not isinstance(value, str):
        emit(column, "column", f"is a {_type(value)}, not a string", "write it as text")
        return None
    return value


def _type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
