"""Good and bad data sets, one per format and defect, each with what LLaMA-Factory 0.9.5 does with it.

`expect` is LLaMA-Factory's verdict, established by running its own loader (`ftk.dataset.lf_oracle`):
- `trained`: every sample becomes a training row; the validator must call it valid (warnings allowed);
- `refused`: LLaMA-Factory drops samples (often with only a warning) or stops; the validator must call it invalid;
- `misread`: LLaMA-Factory trains, but not on what the file says (a column it ignores, a role it mislabels, the
  wrong data kind for the stage); the validator must call it invalid.
Written by the project; none of LLaMA-Factory's own data is copied here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

H, G = "human", "gpt"


def sg(*turns: tuple[str, str], tag: tuple[str, str] = ("from", "value")) -> list[dict[str, str]]:
    return [{tag[0]: r, tag[1]: c} for r, c in turns]


def qa(i: int) -> tuple[str, str]:
    return (f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.")


def alpaca(n: int = 3, **extra: Any) -> list[dict[str, Any]]:
    return [{"instruction": qa(i)[0], "input": "", "output": qa(i)[1], **extra} for i in range(1, n + 1)]


def convs(n: int = 3) -> list[dict[str, Any]]:
    return [{"conversations": sg((H, qa(i)[0]), (G, qa(i)[1]))} for i in range(1, n + 1)]


SG = {"formatting": "sharegpt", "columns": {"messages": "conversations"}}
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
PAIR_SG = {
    "formatting": "sharegpt",
    "ranking": True,
    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
}
PAIR_ALPACA = {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}
KTO_SG = {"formatting": "sharegpt", "columns": {"messages": "messages", "kto_tag": "label"}, "tags": OPENAI_TAGS}
ADD = {"name": "add", "description": "Add two numbers", "parameters": {"type": "object", "properties": {"a": {}}}}
TOOLS = json.dumps([ADD])
CALL = json.dumps({"name": "add", "arguments": {"a": 2, "b": 3}})


def pairs(n: int = 3, ending: str = H) -> list[dict[str, Any]]:
    out = []
    for i in range(1, n + 1):
        q, a = qa(i)
        conv = sg((H, q)) if ending == H else sg((H, q), (G, a), (H, "And again?"), (G, a))
        out.append({"conversations": conv, "chosen": {"from": G, "value": a}, "rejected": {"from": G, "value": "No."}})
    return out


def kto(n: int = 4) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, n + 1):
        q, a = qa(i)
        good = i % 2 == 1
        rows.append(
            {
                "messages": sg(("user", q), ("assistant", a if good else "I do not know."), tag=("role", "content")),
                "label": good,
            }
        )
    return rows


@dataclass
class Case:
    name: str
    expect: str  # trained | refused | misread
    samples: list[Any] | str  # JSON values, or the raw text of the file
    entry: dict[str, Any] = field(default_factory=dict)  # dataset_info.json entry without file_name
    stage: str = "sft"
    suffix: str = ".json"

    def write(self, folder: Path) -> dict[str, Any]:
        path = folder / f"{self.name}{self.suffix}"
        if isinstance(self.samples, str):
            path.write_text(self.samples, encoding="utf-8")
        elif self.suffix == ".jsonl":
            path.write_text("".join(json.dumps(s) + "\n" for s in self.samples), encoding="utf-8")
        else:
            path.write_text(json.dumps(self.samples, indent=1), encoding="utf-8")
        return {"file_name": path.name, **self.entry}


def _mod(rows: list[dict[str, Any]], i: int, **change: Any) -> list[dict[str, Any]]:
    rows = json.loads(json.dumps(rows))
    rows[i].update(change)
    return rows


ALP_SYS = {"columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}}
ALP_HIST = {"columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}
SG_TOOLS = {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
TOOL_CONV = sg((H, "Add 2 and 3."), ("function_call", CALL), ("observation", '{"sum": 5}'), (G, "2 plus 3 is 5."))

CASES: list[Case] = [
    # --- alpaca SFT
    Case("alpaca_good", "trained", alpaca()),
    Case("alpaca_jsonl", "trained", alpaca(), suffix=".jsonl"),
    Case(
        "alpaca_system_history",
        "trained",
        alpaca(system="Answer briefly.", history=[["Hi", "Hello!"]]),
        {"columns": {**ALP_SYS["columns"], "history": "history"}},
    ),
    Case("alpaca_duplicates", "trained", alpaca(2) + alpaca(1)),
    Case("alpaca_empty_output", "trained", _mod(alpaca(), 1, output="")),
    Case("alpaca_empty_system", "trained", alpaca(system=""), ALP_SYS),
    Case("alpaca_output_renamed", "refused", [{"instruction": qa(i)[0], "answer": qa(i)[1]} for i in (1, 2)]),
    Case("alpaca_output_number", "refused", [{"instruction": "How many?", "output": 3}] * 1 + alpaca(1)),
    Case("alpaca_system_unmapped", "misread", alpaca(system="Answer in French.")),
    Case("alpaca_history_not_pairs", "refused", alpaca(history=[["only a question"]]), ALP_HIST),
    # --- sharegpt SFT
    Case(
        "sharegpt_good",
        "trained",
        [{"conversations": sg(("system", "Be brief."), (H, "Hi"), (G, "Hello!"))}, *convs()],
        SG,
    ),
    Case(
        "sharegpt_openai_tags",
        "trained",
        [{"messages": sg(("user", q), ("assistant", a), tag=("role", "content"))} for q, a in map(qa, (1, 2))],
        {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": OPENAI_TAGS},
    ),
    Case("sharegpt_duplicates", "trained", convs(2) + convs(1), SG),
    Case("sharegpt_empty_turn", "trained", [{"conversations": sg((H, "Say nothing."), (G, ""))}, *convs()], SG),
    Case("sharegpt_ends_human", "refused", [{"conversations": sg((H, "Hi"), (G, "Hello"), (H, "Bye"))}, *convs()], SG),
    Case("sharegpt_unknown_role", "refused", [{"conversations": sg((H, "Hi"), ("bot", "Hello"))}, *convs()], SG),
    Case("sharegpt_two_humans", "refused", [{"conversations": sg((H, "Hi"), (H, "Hi?"), (G, "Hello"))}, *convs()], SG),
    Case(
        "sharegpt_late_system",
        "refused",
        [{"conversations": sg((H, "Hi"), (G, "Hello"), ("system", "Be brief."), (G, "Ok"))}, *convs()],
        SG,
    ),
    Case("sharegpt_no_messages", "refused", [{"conversations": []}, *convs()], SG),
    Case(
        "sharegpt_structured_content",
        "refused",
        [
            {"conversations": [{"from": H, "value": [{"type": "text", "value": "Hi"}]}, {"from": G, "value": "Hello"}]},
            *convs(),
        ],
        SG,
    ),
    Case("sharegpt_system_unmapped", "misread", [dict(c, system="Answer in French.") for c in convs()], SG),
    # --- tool calls
    Case("tools_good", "trained", [{"conversations": TOOL_CONV, "tools": TOOLS}, *convs()], SG_TOOLS),
    Case(
        "tools_call_not_json",
        "refused",
        [
            {
                "conversations": sg(
                    (H, "Add 2 and 3."), ("function_call", "add(2, 3)"), ("observation", "5"), (G, "5")
                ),
                "tools": TOOLS,
            },
            *convs(),
        ],
        SG_TOOLS,
    ),
    Case(
        "tools_call_without_name",
        "refused",
        [
            {
                "conversations": sg(
                    (H, "Add 2 and 3."), ("function_call", '{"arguments": {}}'), ("observation", "5"), (G, "5")
                ),
                "tools": TOOLS,
            },
            *convs(),
        ],
        SG_TOOLS,
    ),
    Case(
        "tools_without_properties",
        "refused",
        [{"conversations": TOOL_CONV, "tools": json.dumps([{"name": "add", "parameters": {}}])}],
        SG_TOOLS,
    ),
    Case("tools_unmapped", "misread", [{"conversations": TOOL_CONV, "tools": TOOLS}], SG),
    # --- preference pairs (DPO / ORPO)
    Case("pairs_sharegpt_good", "trained", pairs(), PAIR_SG, stage="dpo"),
    Case(
        "pairs_sharegpt_multiturn_good",
        "trained",
        [
            {
                "conversations": sg((H, "Hi"), (G, "Hello"), (H, "2+2?")),
                "chosen": {"from": G, "value": "4"},
                "rejected": {"from": G, "value": "5"},
            },
            *pairs(),
        ],
        PAIR_SG,
        stage="dpo",
    ),
    Case("pairs_sharegpt_ends_gpt", "refused", pairs(ending=G), PAIR_SG, stage="dpo"),
    Case(
        "pairs_sharegpt_chosen_string",
        "refused",
        [dict(p, chosen=p["chosen"]["value"]) for p in pairs()],
        PAIR_SG,
        stage="dpo",
    ),
    Case(
        "pairs_sharegpt_chosen_human",
        "misread",
        _mod(pairs(), 0, chosen={"from": H, "value": "4"}),
        PAIR_SG,
        stage="dpo",
    ),
    Case(
        "pairs_alpaca_good",
        "trained",
        [{"instruction": q, "chosen": a, "rejected": "No."} for q, a in map(qa, (1, 2, 3))],
        PAIR_ALPACA,
        stage="dpo",
    ),
    Case(
        "pairs_alpaca_rejected_missing",
        "refused",
        [{"instruction": q, "chosen": a} for q, a in map(qa, (1, 2))],
        PAIR_ALPACA,
        stage="dpo",
    ),
    Case("pairs_on_sft_stage", "refused", pairs(), PAIR_SG, stage="sft"),
    Case("sft_on_dpo_stage", "refused", convs(), SG, stage="dpo"),
    # --- KTO
    Case("kto_good", "trained", kto(), KTO_SG, stage="kto"),
    Case(
        "kto_alpaca_good",
        "trained",
        [dict(r, kto_tag=i % 2 == 0) for i, r in enumerate(alpaca(4))],
        {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "kto_tag"}},
        stage="kto",
    ),
    Case("kto_tag_string", "refused", [dict(r, label=str(r["label"]).lower()) for r in kto()], KTO_SG, stage="kto"),
    Case("kto_on_sft_stage", "refused", kto(), KTO_SG, stage="sft"),
    # --- pre-training text
    Case(
        "pt_jsonl",
        "trained",
        [{"text": f"Paragraph {i} about numbers."} for i in range(5)],
        {"columns": {"prompt": "text"}},
        stage="pt",
        suffix=".jsonl",
    ),
    Case(
        "pt_txt",
        "trained",
        "".join(f"Line {i} of plain text.\n" for i in range(6)),
        {"columns": {"prompt": "text"}},
        stage="pt",
        suffix=".txt",
    ),
    Case(
        "pt_on_sft_stage",
        "refused",
        [{"text": f"Paragraph {i}."} for i in range(3)],
        {"columns": {"prompt": "text"}},
        stage="sft",
        suffix=".jsonl",
    ),
    Case("sft_on_pt_stage", "misread", alpaca(), stage="pt"),
    # --- files
    Case("bad_json", "refused", '[{"instruction": "Hi", "output": "Hello"},\n {"instruction": "Bye", "output": }]\n'),
]


def write_corpus(folder: Path, cases: list[Case] = CASES) -> dict[str, dict[str, Any]]:
    """Write every case's file and one dataset_info.json naming them all; returns the entries."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = {c.name: c.write(folder) for c in cases}
    (folder / "dataset_info.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return entries


# --- images: run with a vision-language model and template (the tiny Qwen2-VL of `ftk tiny-vl build`) ---
MM_TAGS = {"formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"}, "tags": OPENAI_TAGS}


def mm(image: str, text: str = "<image>What colour is it?") -> dict[str, Any]:
    msgs = sg(("user", text), ("assistant", "Red."), tag=("role", "content"))
    return {"messages": msgs, "images": [image]}


MM_CASES: list[Case] = [
    Case("mm_good", "trained", [mm("img/red.jpg"), mm("img/red.png", "Colour? <image>")], MM_TAGS),
    Case("mm_placeholder_missing", "refused", [mm("img/red.jpg", "What colour is it?"), mm("img/red.jpg")], MM_TAGS),
    Case("mm_missing_file", "refused", [mm("img/nope.jpg"), mm("img/red.jpg")], MM_TAGS),
    Case("mm_truncated_jpeg", "refused", [mm("img/cut.jpg"), mm("img/red.jpg")], MM_TAGS),
    Case("mm_not_an_image", "refused", [mm("img/notimage.jpg"), mm("img/red.jpg")], MM_TAGS),
    Case(
        "mm_images_unmapped",
        "refused",
        [mm("img/red.jpg")],
        SG | {"columns": {"messages": "messages"}, "tags": OPENAI_TAGS},
    ),
]


def write_media(folder: Path) -> None:
    """The images the multimodal cases name: whole ones, a truncated JPEG, a file that is not an image."""
    from PIL import Image  # Pillow is in every venv that runs this corpus; only the media cases need it

    (folder / "img").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), "red").save(folder / "img" / "red.jpg", quality=90)
    Image.new("RGB", (64, 64), "red").save(folder / "img" / "red.png")
    # a detailed image cut at 90%: its headers are whole, so Pillow's verify() passes it; decoding fails
    Image.effect_noise((256, 256), 64).convert("RGB").save(folder / "img" / "noise.jpg", quality=90)
    whole = (folder / "img" / "noise.jpg").read_bytes()
    (folder / "img" / "cut.jpg").write_bytes(whole[: len(whole) * 9 // 10])
    (folder / "img" / "notimage.jpg").write_bytes(b"not an image\n")
