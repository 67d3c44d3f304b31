"""The merge stage: adapter/base check, making an export servable, verifying it against base + adapter."""
