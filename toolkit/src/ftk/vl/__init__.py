"""Vision-language models: tiny offline builds, chat templates, LLaMA-Factory image prompts."""
