"""Bounded reading of the files the tool is handed: configs, batch files, signature bundles.

A co-signer's file must never crash the tool. JSON and YAML parsers recurse once per nesting level,
and importing py_ecc raises Python's recursion limit to 100,000, so a file nested 100,000 levels
deep overflows the C stack (SIGSEGV, no message) before Python can raise RecursionError. So every
file is bounded in size when read, and its nesting depth is measured by a scan that does not
recurse (strings are skipped, so a bracket inside a string does not count) before any parser
sees it. Every refusal is one line naming the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from treasury.errors import InvalidInput

MAX_BYTES = 4 * 1024 * 1024  # a bundle with a large batch's calldata is a few hundred KiB
MAX_DEPTH = 64  # our files nest at most ~8 levels (config: treasury.treasuries.ops.policy.caps[0]...)
MAX_NODES = 1_000_000  # YAML nodes with every alias expanded: refuses an alias bomb ("billion laughs")

_JSON_OUTSIDE = re.compile(r'["\[\]{}]')
_JSON_INSIDE = re.compile(r'["\\]')


def read_text(path: str | Path, what: str, *, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of `path`, at most `max_bytes` long: "cannot read {what} {path}: ..." otherwise."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as error:
        raise InvalidInput(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(raw) > max_bytes:
        raise InvalidInput(f"cannot read {what} {path}: larger than {max_bytes // 1024} KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"cannot read {what} {path}: not UTF-8 text") from None


def json_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep JSON text nests ([ and { outside strings), scanning no further than `limit` + 1."""
    depth = deepest = position = 0
    while match := _JSON_OUTSIDE.search(text, position):
        position = match.end()
        char = match.group()
        if char == '"':
            position = _string_end(text, position)
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        else:
            depth -= 1
    return deepest


def _string_end(text: str, position: int) -> int:
    """The index after the quote closing the JSON string that starts before `position` (or the end)."""
    while match := _JSON_INSIDE.search(text, position):
        if match.group() == '"':
            return match.end()
        position = match.end() + 1  # a backslash escapes the next character, a quote included
    return len(text)


def yaml_shape(text: str, limit: int = MAX_DEPTH) -> tuple[int, int]:
    """(nesting depth, nodes with every alias expanded) of YAML text, from its event stream.

    The event parser keeps its own stack instead of recursing, so this is safe on any input; it
    stops as soon as either figure is over its bound.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sizes: dict[str, int] = {}  # anchor -> nodes of the anchored node, expanded
    heights: dict[str, int] = {}  # anchor -> levels the anchored node spans, expanded (0 for a scalar)
    frames: list[list] = [[None, 0, 0]]  # open collections: [anchor, nodes so far, levels below it so far]
    deepest = nodes = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            frames.append([event.anchor, 1, 0])
            deepest = max(deepest, len(frames) - 1)
            nodes += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, count, below = frames.pop()
            if anchor:
                sizes[anchor], heights[anchor] = count, below + 1
            frames[-1][1] += count
            frames[-1][2] = max(frames[-1][2], below + 1)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in (frame[0] for frame in frames):  # refers to a node still open: a cycle
                raise InvalidInput(f"alias *{event.anchor} refers to a node that contains it (a recursive structure)")
            count, height = sizes.get(event.anchor or "", 1), heights.get(event.anchor or "", 0)
            deepest = max(deepest, len(frames) - 1 + height)  # the alias expands to its anchor's levels here
            frames[-1][1] += count
            frames[-1][2] = max(frames[-1][2], height)
            nodes += count
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor], heights[event.anchor] = 1, 0
            frames[-1][1] += 1
            nodes += 1
        if deepest > limit or nodes > MAX_NODES:
            break
    return deepest, nodes


def load_json(text: str, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """JSON text parsed, after its depth is checked: one-line errors "{what}: {problem}"."""
    if json_depth(text, max_depth) > max_depth:
        raise InvalidInput(f"{what}: nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{what}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:  # only if the recursion limit is below max_depth: still one line
        raise InvalidInput(f"{what}: nested too deep") from None
    except (ValueError, OverflowError) as error:  # e.g. an integer over Python's 4,300-digit limit
        raise InvalidInput(f"{what}: not valid JSON: {_first_line(error)}") from None


def load_yaml(text: str, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """YAML (or JSON) text parsed with the safe loader, after its depth and aliases are checked."""
    import yaml

    try:
        depth, nodes = yaml_shape(text, max_depth)
        if depth > max_depth:
            raise InvalidInput(f"{what}: nested deeper than {max_depth} levels")
        if nodes > MAX_NODES:
            raise InvalidInput(f"{what}: expands to more than {MAX_NODES:,} values (YAML aliases)")
        return yaml.safe_load(text)
    except InvalidInput as error:
        if str(error).startswith(f"{what}:"):
            raise
        raise InvalidInput(f"{what}: {error}") from None
    except yaml.YAMLError as error:
        raise InvalidInput(f"{what}: not valid YAML: {_first_line(error)}") from None
    except RecursionError:
        raise InvalidInput(f"{what}: nested too deep") from None
    except (ValueError, OverflowError) as error:  # a bad timestamp (2001-13-45), an over-long integer
        raise InvalidInput(f"{what}: not valid YAML: {_first_line(error)}") from None


def read_json(path: str | Path, what: str) -> Any:
    """The JSON file at `path`, bounded in size and depth: "cannot read {what} {path}: ..." otherwise."""
    return load_json(read_text(path, what), f"cannot read {what} {path}")


def read_yaml(path: str | Path, what: str) -> Any:
    """The YAML (or JSON) file at `path`, bounded in size and depth: "cannot read {what} {path}: ..." otherwise."""
    return load_yaml(read_text(path, what), f"cannot read {what} {path}")


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(error).__name__
