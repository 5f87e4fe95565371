"""Hypothesis strategies: JSON values with every awkward edge, and real payloads bent out of shape.

``mutated(base)`` starts from a real platform payload (so most examples get past the first
checks and reach the deeper code) and replaces, deletes or wraps a few of its fields;
``encoded`` turns a document into bytes the way a careless or hostile client might.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.corpus import NASTY_TEXT, NASTY_VALUES

__all__ = ["Path", "encoded", "json_values", "mutated", "paths_of", "texts"]

Path = tuple[str | int, ...]

texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=12),  # surrogates too
    st.sampled_from(NASTY_TEXT),
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and ±Infinity included
    texts,
    st.sampled_from(NASTY_VALUES),
)

json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=10,
)


def paths_of(doc: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path into ``doc`` (object keys and list indexes), parents before children."""
    if isinstance(doc, dict):
        items: Iterator[tuple[str | int, Any]] = iter(doc.items())
    elif isinstance(doc, list):
        items = iter(enumerate(doc))
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from paths_of(value, (*prefix, key))


def _child(doc: Any, key: str | int) -> Any:
    if isinstance(doc, dict) and isinstance(key, str):
        return doc.get(key)
    if isinstance(doc, list) and isinstance(key, int) and key < len(doc):
        return doc[key]
    return None


def _parent(doc: Any, path: Path) -> Any:
    """The container holding ``path``'s last step, or None when an earlier mutation removed it."""
    for key in path[:-1]:
        doc = _child(doc, key)
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], *, keep: frozenset[Path] = frozenset()) -> Any:
    """``base`` with one to four fields replaced by odd values, deleted, or wrapped in a list.

    Paths in ``keep`` (and their children) are left alone, e.g. a URL the service would call.
    """
    doc = copy.deepcopy(base)
    paths = [p for p in paths_of(base) if not any(p[: len(k)] == k for k in keep)]
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        if isinstance(parent, dict) and isinstance(key, str):
            present = key in parent
        elif isinstance(parent, list) and isinstance(key, int):
            present = key < len(parent)
        else:
            continue
        action = draw(st.sampled_from(["replace", "replace", "delete", "wrap"]))
        if action == "delete" and present:
            del parent[key]
        elif action == "wrap" and present:
            parent[key] = [parent[key]]
        elif present or isinstance(parent, dict):
            # a copy: the sampled values ([], {}) are shared, and a later step may fill this one
            parent[key] = copy.deepcopy(draw(json_values))
    if draw(st.booleans()):
        # an extra field nobody asked for, at the top
        doc[draw(st.text(max_size=12))] = draw(json_values)
    return doc


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """``doc`` as bytes: escaped or raw UTF-8 (lone surrogates then make invalid UTF-8),
    sometimes after a BOM, sometimes with a duplicated key appended."""
    ascii_only = draw(st.booleans())
    text = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=True)
    if isinstance(doc, dict) and doc and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(doc)))
        text = text[:-1] + ", " + json.dumps(key) + ": " + json.dumps(draw(json_values)) + "}"
    body = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        body = b"\xef\xbb\xbf" + body
    return body
