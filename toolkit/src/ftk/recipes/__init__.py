"""LLaMA-Factory recipes: ``render`` fills a recipe (configs/train, configs/merge) with the settings and checks
its keys against ``lf_keys``, the list of keys and templates LLaMA-Factory accepts (llamafactory_keys.json,
generated in the train venv), so the toolkit venv validates recipes without importing LLaMA-Factory."""
