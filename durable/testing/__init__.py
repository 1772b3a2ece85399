"""``durable.testing``: test workflows in-process, in virtual time, and keep their histories.

``Environment`` runs workflows and actions on a memory store with a ``VirtualClock`` that
skips the time workflows spend waiting, so a workflow that sleeps for 30 days is tested in
milliseconds; actions can be swapped for test doubles. ``save_history`` writes a history
for the replay corpus that ``durable replay`` and the pytest plugin
(``--durable-histories DIR``) run against today's code.
"""

from .._corpus import save_history
from ._clock import VirtualClock
from ._environment import Environment

__all__ = [
    "Environment",
    "VirtualClock",
    "save_history",
]

def _public_module() -> None:
    """Show exported names as ``durable.testing.X``."""
    for name in __all__:
        globals()[name].__module__ = "durable.testing"


_public_module()
del _public_module
