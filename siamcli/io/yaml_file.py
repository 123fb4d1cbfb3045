"""A YAML file read within bounds: its size, its nesting and what its aliases expand to.

A YAML alias repeats a whole node where it is named, so a file of 2 kB whose aliases name
aliases (``b: [*a, *a, *a, ...]``, ten levels) stands for 10^9 values: whatever walks the
parsed data (turning it into a cache key, comparing it, printing it) runs for hours and
fills the memory. A file nested 10,000 levels deep overflows the composer's recursion.
:func:`read_yaml` composes the document with PyYAML's safe loader (no Python objects are
built from tags) and counts, while it composes, how deep each node lies and how many values
the document holds once every alias is expanded, refusing the file past
:data:`MAX_DEPTH` or :data:`MAX_VALUES`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Union

import yaml

from ..errors import SiamcliError
from .paths import read_input

#: the largest YAML file siamcli reads: a tracker config takes 2 kB
MAX_YAML_BYTES = 1 << 20
#: the deepest nesting of lists and mappings: a tracker config nests three levels
MAX_DEPTH = 64
#: the most values (scalars, lists, mappings) a document may hold with its aliases expanded:
#: a tracker config holds about 100
MAX_VALUES = 100_000


class _Refused(yaml.YAMLError):
    """A document beyond siamcli's bounds (its message says which)."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting nesting depth and expanded size while it composes."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        #: id of each composed node -> the values it stands for, aliases expanded
        self._sizes: Dict[int, int] = {}
        self._nodes: List[yaml.Node] = []  # keeps the ids above unique while the document is composed

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            anchored = self.anchors.get(self.peek_event().anchor)
            if anchored is not None and id(anchored) not in self._sizes:
                raise _Refused("an alias names a node that contains it (a recursive structure)")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"it nests lists or mappings more than {MAX_DEPTH} levels deep")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._sizes:  # met for the first time (an alias returns the node it names, counted before)
            if isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = []
            size = 1 + sum(self._sizes[id(child)] for child in children)
            if size > MAX_VALUES:
                raise _Refused(f"its aliases expand it to more than {MAX_VALUES:,} values")
            self._sizes[id(node)] = size
            self._nodes.append(node)
        return node


def read_yaml(path: Union[str, Path], what: str = "YAML file") -> Any:
    """The data of the YAML file at ``path``, or a :class:`SiamcliError` naming the file and what
    is wrong with it (too large, not YAML, too deep, aliases expanding beyond the bounds)."""
    data = read_input(path, what, MAX_YAML_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SiamcliError(f"{path} is not a valid YAML file (not UTF-8 text)") from None
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise SiamcliError(f"{path} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SiamcliError(f"{path} is not a valid YAML file ({type(exc).__name__}{where})") from None
    except ValueError as exc:  # a number of more digits than Python converts (sys.set_int_max_str_digits)
        raise SiamcliError(f"{path} is not a valid YAML file ({str(exc).splitlines()[0][:120]})") from None
    finally:
        loader.dispose()
