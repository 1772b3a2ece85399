"""Payload codecs: bytes in, bytes out, applied to every payload at rest.

A codec (``durable.connect(url, codec=...)``) sees each payload as the MessagePack bytes of
its value and returns what the store keeps; ``decode`` turns that back. The store keeps an
encoded payload as a MessagePack extension (type :data:`EXT_CODE`) in place of the value, so
that everything else in a row (ids, names, seqs, timestamps, error messages, an event's
metadata) stays readable and a history without a codec in its reader still decodes: its
payloads show as encoded. ``None`` stays ``None`` (it carries nothing).

Two codecs ship as examples: :class:`AesGcmCodec` (encryption with key ids, so that keys can
rotate) and :class:`ZlibCodec` (compression); :class:`CodecChain` applies several in turn.
"""

from __future__ import annotations

import importlib
import itertools
import os
import zlib
from typing import Any, Final, Mapping, Protocol, runtime_checkable

import msgspec

from ._extras import require
from ._validate import show
from .errors import (
    ArgumentTypeError, CodecError, InputError, InvalidArgumentError, UnknownKeyError, UsageError,
)

__all__ = ["EXT_CODE", "AesGcmCodec", "Codec", "CodecChain", "PayloadCodec", "Where",
           "ZlibCodec", "check_codec", "load_codec", "place"]

EXT_CODE: Final = 7  # the MessagePack extension type of an encoded payload
_encode: Final = msgspec.msgpack.Encoder().encode
_decode: Final = msgspec.msgpack.Decoder().decode
Ext: Final = msgspec.msgpack.Ext


@runtime_checkable
class Codec(Protocol):
    """Turns a payload's bytes into what the store keeps, and back.

    ``decode(encode(data)) == data`` for all ``data``. Both are called from the worker's and
    the client's event loop thread: keep them fast (AES-GCM and zlib take microseconds for a
    small payload). Raise anything to refuse: it reaches the caller as a ``CodecError``.
    """

    def encode(self, data: bytes) -> bytes:
        """What the store keeps for the payload ``data``."""
        ...

    def decode(self, data: bytes) -> bytes:
        """The payload that ``encode`` turned into ``data``."""
        ...


# Where a payload is, for an error's message: a text, or (record, field, index or key)
# formatted only when the message is made.
Where = str | tuple[str, str, Any]


def place(where: Where) -> str:
    """``where`` as text: ``ActionScheduled.args[0]``, ``ExecutionRecord.data['card']``."""
    if isinstance(where, str):
        return where
    record, field, key = where
    return f"{record}.{field}" if key is None else f"{record}.{field}[{key!r}]"


class PayloadCodec:
    """A codec applied to payload values (what ``CodecStore`` writes and reads)."""

    __slots__ = ("codec", "name")

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.name = type(codec).__qualname__

    def encode(self, value: Any, where: Where) -> Any:
        """``value`` (payload builtins) as the store keeps it: an extension holding the
        codec's bytes (an already encoded value, and None, as they are)."""
        if value is None or type(value) is Ext:
            return value
        try:
            data = self.codec.encode(_encode(value))
        except CodecError:
            raise
        except Exception as exc:
            where = place(where)
            raise CodecError(f"{where}: codec {self.name} could not encode it "
                             f"({type(exc).__name__}: {exc})", where=where,
                             codec=self.name) from exc
        if type(data) is not bytes:
            where = place(where)
            raise CodecError(f"{where}: codec {self.name}.encode returned a "
                             f"{type(data).__name__}, not bytes", where=where, codec=self.name)
        return Ext(EXT_CODE, data)

    def decode(self, value: Any, where: Where) -> Any:
        """A value read from the store as its payload (an unencoded one as it is)."""
        if type(value) is not Ext or value.code != EXT_CODE:
            return value
        try:
            return self._decode(value)
        except Exception as exc:
            raise self._undecodable(exc, place(where)) from exc

    def _decode(self, value: Any) -> Any:
        data = self.codec.decode(value.data)
        if type(data) is not bytes:
            raise TypeError(f"decode returned a {type(data).__name__}, not bytes")
        return _decode(data)

    def _undecodable(self, exc: Exception, where: str) -> CodecError:
        if isinstance(exc, UnknownKeyError):
            return UnknownKeyError(f"{where}: {exc.message}", where=where, codec=self.name,
                                   key_id=exc.key_id)
        if isinstance(exc, CodecError):
            return CodecError(f"{where}: {exc.message}", where=where, codec=self.name)
        return CodecError(
            f"{where}: codec {self.name} could not decode it ({type(exc).__name__}: {exc}); "
            "it stays stored as it is: give the client the codec (and key) that encoded it",
            where=where, codec=self.name)

    def encode_bytes(self, data: bytes, where: Where) -> bytes:
        """Bytes that are MessagePack already (an action's heartbeat details), encoded."""
        return _encode(self.encode(_decode(data), where))

    def decode_bytes(self, data: bytes, where: Where) -> bytes:
        """The MessagePack bytes that :meth:`encode_bytes` encoded (others as they are)."""
        value = _decode(data)
        return data if type(value) is not Ext else _encode(self.decode(value, where))


def check_codec(codec: Any) -> PayloadCodec | None:
    """``codec`` (None, or an object with ``encode`` and ``decode``) for a client."""
    if codec is None:
        return None
    if isinstance(codec, PayloadCodec):
        return codec
    if isinstance(codec, type) or not isinstance(codec, Codec):
        raise ArgumentTypeError(
            f"codec is an object with encode(bytes) -> bytes and decode(bytes) -> bytes "
            f"methods (durable.Codec), not {show(codec)}", parameter="codec")
    return PayloadCodec(codec)


def load_codec(spec: str) -> Codec:
    """The codec named by ``module:attribute`` (a codec, or a function returning one)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--codec is module:attribute (e.g. myapp.codecs:codec), not {spec!r}")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--codec {spec}: {exc}") from None
    if isinstance(found, type) or (callable(found) and not isinstance(found, Codec)):
        try:
            found = found()  # a class or a factory
        except InputError:
            raise
        except Exception as exc:
            raise UsageError(f"--codec {spec}: calling it raised {type(exc).__name__}: "
                             f"{exc}") from exc
    check_codec(found)
    return found  # type: ignore[no-any-return]


# ---- the codecs that ship -------------------------------------------------------------------

_PLAIN, _ZLIB = b"\x00", b"\x01"


class ZlibCodec:
    """Compression with the standard library's zlib: payloads of at least ``min_size`` bytes
    are compressed at ``level`` (1 fastest .. 9 smallest), smaller ones kept as they are.
    Each encoded payload starts with one byte saying which."""

    def __init__(self, level: int = 6, min_size: int = 256) -> None:
        for name, value, low, high in (("level", level, 0, 9), ("min_size", min_size, 0, 2**31)):
            if type(value) is not int:
                raise ArgumentTypeError(f"ZlibCodec({name}=) is an int, not {show(value)}",
                                        parameter=name)
            if not low <= value <= high:
                raise InvalidArgumentError(f"ZlibCodec({name}=) is from {low} to {high}, not "
                                           f"{value}", parameter=name)
        self.level = level
        self.min_size = min_size

    def encode(self, data: bytes) -> bytes:
        """``data`` compressed (or as it is, when small or compressing does not help)."""
        if len(data) >= self.min_size:
            packed = zlib.compress(data, self.level)
            if len(packed) < len(data):
                return _ZLIB + packed
        return _PLAIN + data

    def decode(self, data: bytes) -> bytes:
        """The payload ``encode`` made ``data`` from."""
        if data[:1] == _ZLIB:
            return zlib.decompress(data[1:])
        if data[:1] == _PLAIN:
            return data[1:]
        raise CodecError("not a payload that ZlibCodec encoded (its first byte is "
                         f"{data[:1]!r}, not 0 or 1)", codec="ZlibCodec")


_AES_VERSION: Final = b"\x01"
_NONCE: Final = 12
_NONCE_MASK: Final = (1 << 96) - 1


class AesGcmCodec:
    """Encryption with AES-GCM (the ``cryptography`` package: ``pip install durable[crypto]``).

    ``keys`` maps key ids to keys of 16, 24 or 32 bytes; payloads are encrypted with the key
    ``current`` (required when there are several) and record its id, so that any key in
    ``keys`` decrypts them. To rotate: add a new key, make it current, and keep the old ones
    for as long as payloads encrypted with them are at rest. A payload that names a key id
    not in ``keys`` raises ``UnknownKeyError``; one that was changed at rest fails its
    authentication (``CodecError``). Each payload takes 14 bytes plus its key id more.
    """

    def __init__(self, keys: Mapping[str, bytes], current: str | None = None) -> None:
        require("cryptography", "AesGcmCodec")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        if not isinstance(keys, Mapping) or not keys:
            raise ArgumentTypeError(f"AesGcmCodec(keys=) is a non-empty dict of key id to key "
                                    f"bytes, not {show(keys)}", parameter="keys")
        self._ciphers: dict[bytes, Any] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not 0 < len(key_id.encode()) < 256:
                raise InvalidArgumentError(f"AesGcmCodec: a key id is a str of 1 to 255 bytes, "
                                           f"not {key_id!r:.80}", parameter="keys")
            if type(key) is not bytes:
                raise ArgumentTypeError(f"AesGcmCodec: key {key_id!r} is bytes, not "
                                        f"{show(key)}", parameter="keys")
            if len(key) not in (16, 24, 32):
                raise InvalidArgumentError(f"AesGcmCodec: key {key_id!r} has {len(key)} bytes; "
                                           "AES keys have 16, 24 or 32", parameter="keys")
            self._ciphers[key_id.encode()] = AESGCM(key)
        if current is None and len(keys) > 1:
            raise InvalidArgumentError("AesGcmCodec(current=) names the key to encrypt with "
                                       "when there are several", parameter="current")
        current = next(iter(keys)) if current is None else current
        if current not in keys:
            raise InvalidArgumentError(f"AesGcmCodec(current={current!r:.80}) is not one of "
                                       f"the key ids {sorted(keys)}", parameter="current")
        self.current = current
        # Nonces: a random 96-bit start per codec, then one more for each payload (NIST SP
        # 800-38D's invocation counter): never the same twice for this codec, and two codecs'
        # runs overlap with a chance of about n * m / 2**96 (n codecs, m payloads each).
        self._nonces = itertools.count(int.from_bytes(os.urandom(_NONCE), "big"))
        encoded = current.encode()
        self._header = _AES_VERSION + bytes([len(encoded)]) + encoded
        self._cipher = self._ciphers[encoded]

    def encode(self, data: bytes) -> bytes:
        """``data`` encrypted with the current key: version, key id, nonce, ciphertext."""
        nonce = (next(self._nonces) & _NONCE_MASK).to_bytes(_NONCE, "big")
        header = self._header
        return header + nonce + self._cipher.encrypt(nonce, data, header)  # type: ignore[no-any-return]

    def decode(self, data: bytes) -> bytes:
        """``data`` decrypted with the key it names."""
        if data[:1] != _AES_VERSION or len(data) < 2:
            raise CodecError("not a payload that AesGcmCodec encrypted", codec="AesGcmCodec")
        end = 2 + data[1]
        key_id = data[2:end]
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            name = key_id.decode(errors="replace")
            raise UnknownKeyError(
                f"the payload was encrypted with key {name!r}, which this AesGcmCodec does not "
                f"hold (it has {sorted(k.decode() for k in self._ciphers)}): add that key",
                codec="AesGcmCodec", key_id=name)
        nonce = data[end:end + _NONCE]
        try:
            return cipher.decrypt(nonce, data[end + _NONCE:], data[:end])  # type: ignore[no-any-return]
        except Exception as exc:  # cryptography's InvalidTag: a wrong key, or changed bytes
            raise CodecError(f"AES-GCM could not authenticate the payload encrypted with key "
                             f"{key_id.decode(errors='replace')!r} ({type(exc).__name__}): "
                             "it was changed at rest, or the key under that id is not the one "
                             "that encrypted it", codec="AesGcmCodec") from exc


class CodecChain:
    """Several codecs in turn: ``encode`` applies them in order, ``decode`` in reverse (e.g.
    ``CodecChain(ZlibCodec(), AesGcmCodec(keys))``: compress, then encrypt)."""

    def __init__(self, *codecs: Codec) -> None:
        for codec in codecs:
            check_codec(codec)
        if not codecs:
            raise InvalidArgumentError("CodecChain needs at least one codec",
                                       parameter="codecs")
        self.codecs = codecs

    def encode(self, data: bytes) -> bytes:
        """``data`` through every codec's ``encode``, first to last."""
        for codec in self.codecs:
            data = codec.encode(data)
        return data

    def decode(self, data: bytes) -> bytes:
        """``data`` through every codec's ``decode``, last to first."""
        for codec in reversed(self.codecs):
            data = codec.decode(data)
        return data
