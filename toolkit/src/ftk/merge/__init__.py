"""The merge stage: adapter/base checks, making an export servable, and verifying it against base + adapter."""
