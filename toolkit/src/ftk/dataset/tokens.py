"""Token length of a sample as the model sees it in training, with the `tokenizers` library (no transformers).

The turns are rendered in ChatML, the chat format of the default model (SmolLM2) and of the Qwen templates:
`<|im_start|>{role}\\n{content}<|im_end|>\\n` for the system prompt (when there is one) and every turn, and
the whole text is encoded with the tokenizer.json given to --tokenizer. Other templates differ by a few tokens
per turn. Image/video placeholders count as their literal text: the vision tokens they expand to depend on the
image size and the processor, so leave head-room in --cutoff-len for multimodal data.
"""

from __future__ import annotations

from pathlib import Path

from ftk.console import EXIT_USAGE, UserError


class TokenCounter:
    def __init__(self, path: Path) -> None:
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise UserError(
                f"--tokenizer {path}: no tokenizer.json there; give a tokenizer.json file or a "
                "model folder that holds one",
                EXIT_USAGE,
            )
        from tokenizers import Tokenizer  # only with --tokenizer: the venvs that validate data need not have it

        try:
            self.tokenizer = Tokenizer.from_file(str(file))
        except Exception as err:
            raise UserError(
                f"--tokenizer {file}: cannot load it with the tokenizers library ({err}); give a "
                "Hugging Face tokenizer.json",
                EXIT_USAGE,
            ) from None
        self.file = file

    @staticmethod
    def render(system: str, turns: list[tuple[str, str]]) -> str:
        parts = [f"<|im_start|>system\n{system}<|im_end|>\n"] if system else []
        parts += [f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in turns]
        return "".join(parts)

    def count(self, system: str, turns: list[tuple[str, str]]) -> int:
        return self.count_batch([self.render(system, turns)])[0]

    def count_batch(self, texts: list[str]) -> list[int]:
        """Token counts of many texts at once: `encode_batch` runs the tokenizers library's parallel (Rust,
        all cores) encoder, the same batch path LLaMA-Factory's tokenizer takes."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
