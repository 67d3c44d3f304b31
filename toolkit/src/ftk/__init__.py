"""ftk: the fine-tune -> merge -> serve toolkit."""

__version__ = "0.1.0"
