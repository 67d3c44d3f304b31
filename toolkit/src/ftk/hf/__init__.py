"""Hugging Face model folders, read without loading weights: shared by every stage that looks at a model.

Modules: ``tensors`` (safetensors headers: names, dtypes, shapes; is a file whole), ``folder`` (is a model folder
complete: config, weights, tokenizer, chat template, processor), ``modelinfo`` (what a folder holds, as vLLM
sees it), ``target_modules`` (a LoRA's module names against a model's, vision-language aware), ``hub_cache``
(where a hub model's folder lies in the ModelScope cache), ``random_lora`` (a random LoRA adapter for a model:
the stand-in when no trained one exists).
"""
