"""findistill: adapt and distil transformer encoders for domain (financial) NER, tracked in MLflow.

``findistill.stages`` holds one module per MLflow entry point; the library below it is grouped by
concern (``data``, ``vocab``, ``models``, ``training``, ``evaluation``, ``costs``, ``tracking``) and
takes tensors and plain data. Only the stages open MLflow runs.
"""

__version__ = "0.1.0"
