"""findistill: adapt and distil transformer encoders for domain (financial) NER, tracked in MLflow.

The science lives in importable modules (``data``, ``ner``, ``training``, ``resources``) that take
tensors and plain data; only ``tracking`` and the scripts in ``entrypoints/`` touch MLflow.
"""

__version__ = "0.1.0"
