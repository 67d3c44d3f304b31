"""The train stage: recipe rendering, preflight checks, template drift check and the run manifest."""
