"""The train stage: preflight checks, the template drift check and the run manifest (recipes: ftk.recipes)."""
