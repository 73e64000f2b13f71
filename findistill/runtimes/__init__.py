"""How a token classifier runs at inference: PyTorch (fp32, dynamic int8) or ONNX Runtime (fp32, dynamic
int8). :mod:`~findistill.runtimes.onnx` exports, quantizes and runs ONNX graphs;
:mod:`~findistill.runtimes.variants` writes variant folders and loads any of them as one kind of module.
"""
