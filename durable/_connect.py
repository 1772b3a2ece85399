"""``durable.connect(url, ...)``: open a store (wrapped with a payload codec when given one)
and a dispatcher, and the client on them."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Generator, Iterable

from ._client import Client
from ._codecs import Codec, check_codec
from ._dispatch import Dispatcher
from ._payloads import MAX_PAYLOAD_BYTES, check_payload_limit
from ._scope import scope
from ._stores import open_store
from ._validate import show
from .errors import ArgumentTypeError

__all__ = ["connect"]


class connect:  # noqa: N801 - used like a function: `await connect(url)` / `async with connect(url)`
    """Open a client on the store at ``url`` (``sqlite:///durable.db``, ``memory://``, ...).

    Use ``client = await durable.connect(url)`` or ``async with durable.connect(url) as client``.
    The client acts for ``tenant`` (default ``"default"``) and may name no other: a call with
    another ``tenant=``, or ``all_tenants=True``, raises ``TenantPermissionError``, unless
    ``tenants`` widens its scope to a list of tenants (``tenant`` is then the first unless
    given) or to every tenant (``tenants="*"``, for admin tools). Workers and servers built
    on a client serve every tenant its store shows them (see the README's "Tenants and
    security").
    With ``redis_url`` (``redis://host:6379/0``), tasks are dispatched through Redis Streams:
    keys start with ``prefix``, each task queue has ``partitions`` streams. Timers, retries and
    lost hints then need the server (``durable server``), which fires and re-announces them.
    ``codec`` (a ``durable.Codec``: ``durable.AesGcmCodec``, ``durable.ZlibCodec``, your own)
    encodes every payload the client and its workers write, and decodes what they read (see
    the README's "Payload codecs"). A payload larger than ``max_payload_bytes`` (MessagePack,
    before the codec; default 2 MiB) is refused with a ``PayloadError``.
    """

    def __init__(self, url: str = "sqlite:///durable.db", *, tenant: str | None = None,
                 tenants: str | Iterable[str] | None = None, redis_url: str | None = None,
                 prefix: str = "durable", partitions: int = 16, codec: Codec | None = None,
                 max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        if not isinstance(url, str):
            raise ArgumentTypeError(f"a store URL is a str, not {show(url)}")
        check_codec(codec)
        self.options: dict[str, Any] = {"codec": codec, "max_payload_bytes":
                                        check_payload_limit(max_payload_bytes)}
        self.url = url
        self.tenant, self.tenants = scope(tenant, tenants)
        self.redis_url = redis_url
        self.prefix = prefix
        self.partitions = partitions
        self._client: Client | None = None

    async def _open(self) -> Client:
        store = await open_store(self.url)
        codec = self.options["codec"]
        checked = check_codec(codec)
        if checked is not None:  # the dispatcher reads through it too
            from ._stores._codec import with_codec

            store = with_codec(store, checked)
        dispatcher: Dispatcher | None = None
        if self.redis_url is not None:
            try:  # MissingExtraError without the redis extra: the store is closed too
                from ._dispatch.redis_streams import RedisDispatcher

                dispatcher = RedisDispatcher(store, self.redis_url, prefix=self.prefix,
                                             partitions=self.partitions)
            except BaseException:
                await store.close()
                raise
        self._client = Client(store, dispatcher=dispatcher, tenant=self.tenant,
                              tenants="*" if self.tenants is None else self.tenants, **self.options)
        return self._client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._open().__await__()

    async def __aenter__(self) -> Client:
        return await self._open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.close()
