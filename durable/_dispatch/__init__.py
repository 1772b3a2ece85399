"""Dispatch: in-process polling for the embedded stores, Redis Streams for production."""

from ._base import Claim, ClaimSpec, Dispatcher
from .local import LocalDispatcher

__all__ = ["Claim", "ClaimSpec", "Dispatcher", "LocalDispatcher"]
