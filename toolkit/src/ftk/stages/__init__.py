"""`ftk run <stage>`: each stage's one implementation (settings, the stage's doctor checks, then the tool)."""
