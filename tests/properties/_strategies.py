"""What an attacker or a careless caller passes: values of every type, and the awkward ones
of the right type (NUL, control characters, lone surrogates, ids near and over the limits,
ints beyond 64 bits, NaN and infinities, deep nesting)."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import strategies as st

from durable._payloads import MAX_PAYLOAD_DEPTH
from durable._validate import MAX_DURATION, MAX_ID_BYTES

_AWKWARD_CHARS = st.sampled_from(["\x00", "\x1f", "\n", "\x7f", "\ud800", "\udfff", "é", "日",
                                  "😀", "a", "-", "/", " ", "%", "'"])


def mix(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, drawn with the given weights (``one_of`` flattens nested
    ``one_of``s, which would drown the valid values among the awkward ones)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


def deep(levels: int) -> list[Any]:
    """A list nested ``levels`` deep."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def texts() -> st.SearchStrategy[str]:
    """Strings: ordinary, with awkward characters, and around the length limit."""
    return st.one_of(
        st.text(max_size=20),
        st.text(_AWKWARD_CHARS, max_size=12),
        st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
        st.integers(MAX_ID_BYTES - 2, MAX_ID_BYTES + 2).map(lambda n: "x" * n),
        st.integers(MAX_ID_BYTES // 2 - 1, MAX_ID_BYTES // 2 + 1).map(lambda n: "é" * n),
        st.sampled_from([8000]).map(lambda n: "x" * n),
        st.just(""),
    )


def numbers() -> st.SearchStrategy[Any]:
    """Numbers of every kind, the unrepresentable included."""
    return st.one_of(
        st.integers(),
        st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, 2**200, -1, 0]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 5e-324,
                         MAX_DURATION, MAX_DURATION + 1]),
        st.booleans(),
    )


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), numbers(), texts(), st.binary(max_size=20),
                     st.datetimes(), st.timedeltas(), st.dates(),
                     st.sampled_from([object(), print, int, ..., {1, 2}, frozenset(), 1j,
                                      datetime.timezone.utc]))


def values() -> st.SearchStrategy[Any]:
    """Anything: scalars, containers of them, and nests deeper than a payload may be."""
    nested = st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(st.one_of(texts(), st.integers(), st.none()), inner, max_size=4)),
        max_leaves=12)
    # Nests the payload check refuses (100,000 deep: the regression tests; Hypothesis could
    # not print one as a failing example).
    return st.one_of(nested, st.sampled_from([MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_DEPTH + 1,
                                              300]).map(deep))


def valid_ids() -> st.SearchStrategy[str]:
    """Ids that pass the checks: printable, non-empty, short."""
    return st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=40)


def ids() -> st.SearchStrategy[Any]:
    """Candidate ids, names and keys: valid ones half of the time, awkward strings, anything."""
    return mix((2, valid_ids()), (1, texts()), (1, scalars()))


def payloads() -> st.SearchStrategy[Any]:
    """Values that encode (JSON-like) half of the time, anything otherwise."""
    plain = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                                   st.floats(allow_nan=False), st.text(max_size=10)),
                         lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                 st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3)),
                         max_leaves=8)
    return mix((1, plain), (1, values()))


def durations() -> st.SearchStrategy[Any]:
    """Candidate durations and timeouts: valid ones half of the time."""
    valid = st.one_of(st.floats(-10, 1e6), st.integers(-10, 10**6),
                      st.timedeltas(datetime.timedelta(seconds=-10), datetime.timedelta(days=30)))
    awkward = st.one_of(numbers(), st.timedeltas(), st.sampled_from(
        [datetime.timedelta.max, datetime.timedelta.min]))
    return mix((2, valid), (1, awkward), (1, scalars()))
