"""Vision-language models: tiny offline builds, adapter target-module checks."""
