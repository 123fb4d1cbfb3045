"""Torch modules of the Siamese networks and checkpoint loading (the named models:
:mod:`siamcli.catalog`).

``siamcli.models`` also names the public function that lists the models users can run
(:func:`siamcli.api.models`). Importing this subpackage makes it that attribute of ``siamcli``,
so the subpackage is callable and answers as the function does: ``siamcli.models()`` lists the
models whatever was imported before.
"""
import sys
import types

from .base import SiameseModel

__all__ = ["SiameseModel"]


class _ListsModels(types.ModuleType):
    def __call__(self):
        from ..api import models

        return models()


sys.modules[__name__].__class__ = _ListsModels
