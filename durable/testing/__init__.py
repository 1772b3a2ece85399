"""``durable.testing``: test workflows in-process, in virtual time.

``Environment`` runs workflows and actions on a memory store with a ``VirtualClock`` that
skips the time workflows spend waiting, so a workflow that sleeps for 30 days is tested in
milliseconds; actions can be swapped for test doubles.
"""

from ._clock import VirtualClock
from ._environment import Environment

__all__ = [
    "Environment",
    "VirtualClock",
]

for _name in __all__:
    globals()[_name].__module__ = "durable.testing"
del _name
