"""The names a user may give to pick a runtime, one definition for the engines and the command line
(kept free of imports, so that the command line lists them without loading a runtime)."""

ENGINES = ("auto", "torch", "onnx")
#: int8 runs on onnxruntime from the graphs of ``siamcli export --int8``
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: ``cuda`` also as ``cuda:N``; ``tensorrt`` for the onnx engine
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
