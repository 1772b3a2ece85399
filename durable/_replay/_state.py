"""What a workflow records about itself: its named state (``ctx.set_state``), its data
(``ctx.data``), and its deterministic random stream (``ctx.random()``, ``ctx.uuid4()``)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from .._history import SetData, SetState
from .._payloads import check_size, dump_value, same_payload
from ..errors import ArgumentTypeError
from ._matcher import Matcher

__all__ = ["RunState"]


class RunState:
    """The state and data of one run, recorded as commands, and its random stream."""

    __slots__ = ("_matcher", "_seed", "state", "data", "_random")

    def __init__(self, matcher: Matcher, seed: str) -> None:
        self._matcher = matcher
        self._seed = seed  # the run id: every replay of the run draws the same numbers
        self.state: str | None = None
        self.data: dict[str, Any] = {}
        self._random: random.Random | None = None

    def set_state(self, state: str) -> None:
        """Issue ``SetState``."""
        if not isinstance(state, str):
            raise ArgumentTypeError(f"a workflow state is a str, not {state!r}")
        matcher = self._matcher
        if matcher.done:
            return  # the run has ended: nothing more is recorded
        recorded: Any = matcher.match(SetState, (state,))
        if recorded is not None and recorded.state != state:
            matcher.changed(recorded, SetState(state), "the state",
                            f" ({recorded.state!r} -> {state!r})")
        self.state = state

    def set_data(self, key: str, value: Any, deleted: bool = False) -> None:
        """Issue ``SetData`` for one key of ``ctx.data``."""
        matcher = self._matcher
        if matcher.done:
            return  # the run has ended: nothing more is recorded
        payload = None if deleted else dump_value(value, f"ctx.data[{key!r}]")
        if not deleted:  # in replay too: a value refused live recorded nothing to take
            check_size(payload, f"ctx.data[{key!r}]")
        recorded: Any = matcher.match(SetData, (key, payload, deleted))
        if recorded is not None and (recorded.deleted != deleted
                                     or not same_payload(recorded.value, payload)):
            matcher.changed(recorded, SetData(key, payload, deleted),
                            f"the value of ctx.data[{key!r}]",
                            f" ({recorded.value!r} -> {payload!r})")
        if deleted:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    # ---- randomness ---------------------------------------------------------------------

    @property
    def random(self) -> random.Random:
        """The run's deterministic random stream (seeded by its run id on first use)."""
        if self._random is None:
            self._random = random.Random(self._seed)
        return self._random

    def uuid4(self) -> uuid.UUID:
        """A random UUID drawn from the run's stream."""
        return uuid.UUID(int=self.random.getrandbits(128), version=4)

    def save_random(self) -> Any:
        """The stream's position, for :meth:`restore_random`."""
        return None if self._random is None else self._random.getstate()

    def restore_random(self, saved: Any) -> None:
        """Put the stream back where :meth:`save_random` found it."""
        if saved is None:
            self._random = None  # seeded afresh on first use, as if never drawn from
        else:
            self.random.setstate(saved)
