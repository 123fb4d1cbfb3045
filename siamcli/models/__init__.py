"""Torch modules of the Siamese networks, the registry of named architectures and checkpoint loading."""
from .base import SiameseModel
from .registry import ARCHITECTURES, build_model

__all__ = ["SiameseModel", "ARCHITECTURES", "build_model"]
