"""Test doubles: an action's definition with its function swapped for a fake of the same shape."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._definitions import ActionDefinition, action_definition
from ..errors import ValidationError

__all__ = ["host_actions"]

ActionRef = Callable[..., Any] | str


def host_actions(actions: Iterable[Any],
                 doubles: Mapping[ActionRef, Callable[..., Any]]) -> list[ActionDefinition]:
    """The definitions a test worker hosts: ``actions``, with each one named in ``doubles``
    (by function or registered name) running its fake instead; a double needs no entry in
    ``actions``."""
    hosted = {d.name: d for d in map(action_definition, actions)}
    for target, fake in doubles.items():
        original = action_definition(target, hosted)
        hosted[original.name] = substitute(original, fake)
    return list(hosted.values())


def substitute(original: ActionDefinition, fake: Callable[..., Any]) -> ActionDefinition:
    """``original`` running ``fake``: same name, retry policy, timeout and conversions (the
    double of a database action runs as an ordinary one and gets None as its connection).

    ``fake`` must take the same parameters (names, kinds, which have defaults) and may not
    annotate one with another type; raises ``ValidationError`` naming the difference.
    """
    decorated = getattr(fake, "__durable_action__", None)
    if isinstance(decorated, ActionDefinition):
        fake = decorated.fn
    if not callable(fake):
        raise ValidationError(f"the test double for action {original.name!r} must be a "
                              f"function, not {fake!r}", action=original.name)
    _check_parameters(original, fake)
    _check_annotations(original, fake)
    if original.transaction:  # the memory store has no transactions: a plain action instead
        fake = _without_connection(fake)
        return dataclasses.replace(original, fn=fake, is_async=inspect.iscoroutinefunction(fake),
                                   transaction=False)
    return dataclasses.replace(original, fn=fake, is_async=inspect.iscoroutinefunction(fake))


def _without_connection(fake: Callable[..., Any]) -> Callable[..., Any]:
    """The double of a database action, called as an ordinary action: it gets None for the
    connection parameter."""
    if inspect.iscoroutinefunction(fake):
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await fake(None, *args, **kwargs)

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        return fake(None, *args, **kwargs)

    return call


def _signature(fn: Callable[..., Any], action: str) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"cannot read the signature of the test double for action "
                              f"{action!r} ({exc})", action=action) from None


def _shape(signature: inspect.Signature) -> list[tuple[str, Any, bool]]:
    return [(p.name, p.kind, p.default is p.empty) for p in signature.parameters.values()]


def _check_parameters(original: ActionDefinition, fake: Callable[..., Any]) -> None:
    want = _signature(original.fn, original.name)
    got = _signature(fake, original.name)
    if _shape(want) != _shape(got):
        raise ValidationError(
            f"the test double {_name(fake)}{got} for action {original.name!r} does not take "
            f"the action's parameters {want}: give it the same parameter names, kinds and "
            "defaults", action=original.name, expected=str(want), got=str(got))


def _check_annotations(original: ActionDefinition, fake: Callable[..., Any]) -> None:
    want, got = _hints(original.fn), _hints(fake)
    for name, hint in got.items():
        if name in want and want[name] != hint:
            what = "its return type" if name == "return" else f"parameter {name!r}"
            raise ValidationError(
                f"the test double {_name(fake)} for action {original.name!r} annotates {what} "
                f"as {hint!r}, the action as {want[name]!r}: use the action's type or none",
                action=original.name, parameter=name)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: nothing to compare
        return {}


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
