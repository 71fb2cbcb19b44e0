"""t2demo: Transformer² (self-adaptive LLMs via singular value fine-tuning), made visible."""

__version__ = "0.1.0"
