"""Reading a YAML config strictly: duplicate keys are an error and aliases are bounded.

PyYAML's safe loader keeps the last of two equal keys without a word, and an alias (``*name``)
stands for a whole value, so a few lines of nested aliases stand for billions of values once
anything walks the result (an "alias bomb"). A study config is small and written by hand, so
both are refused here, each with one message that says where.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import yaml

# Values a config may hold once every alias is expanded: the shipped configs hold a few
# hundred; a bomb holds billions.
MAX_VALUES = 100_000
# Alias uses per file (a hand-written config needs a handful).
MAX_ALIASES = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"
T = TypeVar("T")


class YamlError(ValueError):
    """A YAML text that is not one plain, bounded document (the message says where)."""


def _where(node: yaml.Node | yaml.Event) -> str:
    return f"line {node.start_mark.line + 1}"


def expanded_size(root: T, children: Callable[[T], Iterable[T]], limit: int) -> int:
    """Number of values in ``root`` with shared values counted every time they appear.

    Shared values are sized once (memoised by identity), so an alias bomb is measured in time
    linear in its text. Iterative: no recursion limit applies.

    Parameters
    ----------
    root : the value (a YAML node or a Python object)
    children : the values directly inside a value (empty for scalars)
    limit : stop counting once the size exceeds this

    Returns
    -------
    int
        The expanded size, or a number above ``limit`` once it exceeds it.

    Raises
    ------
    YamlError
        When a value contains itself (a recursive alias).
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # the ancestors of the value being visited
    stack: list[tuple[T, bool]] = [(root, False)]
    while stack:
        value, finished = stack.pop()
        key = id(value)
        if finished:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children(value))
            if sizes[key] > limit:
                return sizes[key]
            continue
        if key in sizes:
            continue
        if key in open_:
            raise YamlError("a value contains itself (a recursive alias)")
        open_.add(key)
        stack.append((value, True))
        stack.extend((c, False) for c in children(value))
    return sizes[id(root)]


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, counting aliases and refusing duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise YamlError(
                    f"{_where(self.peek_event())}: more than {MAX_ALIASES} aliases "
                    "(*name); write the values out"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Hashable, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:  # '<<: *base' may be overridden key by key
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the base class says so
                if first is not key_node:
                    raise YamlError(
                        f"{_where(key_node)}: duplicate key {key!r} (first at "
                        f"{_where(first)}); give each key once"
                    )
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """Parse one YAML document with the safe loader, strictly.

    Raises
    ------
    YamlError
        Duplicate keys in a mapping, more than `MAX_ALIASES` aliases, more than `MAX_VALUES`
        values once aliases are expanded, a recursive alias, nesting too deep to parse, or
        invalid YAML.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node, _node_children, MAX_VALUES)
        if size > MAX_VALUES:
            raise YamlError(
                f"its aliases expand to more than {MAX_VALUES:,} values (an alias "
                "bomb?); write the values out"
            )
        return loader.construct_document(node)
    except RecursionError:
        raise YamlError("nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    except YamlError:
        raise
    except ValueError as exc:  # a scalar the constructor cannot convert (a 5000-digit integer)
        raise YamlError(f"a value cannot be read: {exc}") from None
    finally:
        loader.dispose()
