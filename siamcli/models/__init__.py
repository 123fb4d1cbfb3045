"""Torch modules of the Siamese networks and checkpoint loading (the named models:
:mod:`siamcli.catalog`; the list users see: :func:`siamcli.list_models`)."""
from .base import SiameseModel

__all__ = ["SiameseModel"]
