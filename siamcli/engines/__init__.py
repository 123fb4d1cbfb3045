"""Inference engines: run a Siamese network's template and search branches.

Every engine implements :class:`siamcli.tracking.engine.Engine` (without importing it): uint8
HWC patches (one, or a batch as NHWC) already in the network's channel order go in, numpy
arrays come out, so the tracking code never knows which runtime ran the network.

* :class:`~siamcli.engines.torch_engine.TorchEngine` -- torch, fp32 / bf16 / fp16, CPU or CUDA (+ CUDA graphs)
* :class:`~siamcli.engines.onnx_engine.OnnxEngine` -- onnxruntime on ``siamcli export`` graphs
* :class:`~siamcli.engines.onnx_engine.OnnxPairEngine` -- onnxruntime on NanoTrack's backbone/head ONNX pair
* :func:`~siamcli.engines.factory.choose_engine` -- choose and build one (``auto`` measures, among
  accuracy-verified options)

Submodules are imported lazily so the onnxruntime path starts without torch.
"""
__all__ = ["TorchEngine", "OnnxEngine", "OnnxPairEngine", "make_engine"]


def __getattr__(name):
    if name == "TorchEngine":
        from .torch_engine import TorchEngine

        return TorchEngine
    if name in ("OnnxEngine", "OnnxPairEngine"):
        from . import onnx_engine

        return getattr(onnx_engine, name)
    if name == "make_engine":
        from .factory import make_engine

        return make_engine
    raise AttributeError(name)
