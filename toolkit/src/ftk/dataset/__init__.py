"""The dataset stage: validate LLaMA-Factory data files, register them, build the project's own data.

Modules, one job each:
- `formats`: LLaMA-Factory's column and tag conventions (alpaca, sharegpt) and the layout of one file.
- `readers`: stream samples from JSON arrays and JSON lines with their line numbers.
- `problems`: the problem record and a sink that counts every problem but keeps only a few.
- `validators`: check one sample against a layout.
- `media`: image/video path checks (containment in the media root, existence, Pillow verify).
- `dedup`: a compact hash index for duplicate samples.
- `tokens`: chat-formatted token counts with the `tokenizers` library.
- `validate`: validate whole files (streams, combines the above).
- `report`: problem lines, the summary table and the JSON report.
- `registry`: dataset_info.json edits (file lock, atomic write through ftk.files, backups).
- `templates`: fill `{{name}}`/`{{author}}` placeholders (the identity set).
- `shapes`: generate the multimodal shapes set (images and questions).
"""
