"""The replay benchmarks' workflow shapes: they ship with the package (``durable bench``)."""

from durable._bench._shapes import FANOUT, SHAPES, record, steps_for

__all__ = ["FANOUT", "SHAPES", "record", "steps_for"]
