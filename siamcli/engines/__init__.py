"""Inference engines: run a Siamese network's template and search branches.

Every engine takes uint8 HWC patches (one, or a batch as NHWC) already in the
network's channel order and returns numpy arrays, so the tracking code never
knows which runtime ran the network.
"""
from .base import Engine

__all__ = ["Engine"]
