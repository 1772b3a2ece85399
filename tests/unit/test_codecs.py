"""Payload codecs: the shipped ones, their bad inputs, and the options of ``connect``."""

from __future__ import annotations

import os
from typing import Any

import pytest

import durable
from durable._codecs import PayloadCodec, load_codec
from durable._stores.memory import MemoryStore
from durable.errors import (
    ArgumentTypeError, CodecError, InvalidArgumentError, UnknownKeyError, UsageError,
)

K1, K2 = os.urandom(32), os.urandom(16)


def test_aes_gcm_rotates_keys_and_names_the_one_it_lacks() -> None:
    old = durable.AesGcmCodec({"k1": K1})
    encoded = old.encode(b"card 4242")
    rotated = durable.AesGcmCodec({"k1": K1, "k2": K2}, current="k2")
    assert rotated.decode(encoded) == b"card 4242"
    with pytest.raises(UnknownKeyError, match="'k2'") as exc:
        old.decode(rotated.encode(b"x"))
    assert exc.value.key_id == "k2"
    assert isinstance(exc.value, CodecError)


def test_aes_gcm_refuses_a_changed_payload_or_the_wrong_key_under_an_id() -> None:
    codec = durable.AesGcmCodec({"k1": K1})
    encoded = bytearray(codec.encode(b"total: 100"))
    encoded[-1] ^= 1
    with pytest.raises(CodecError, match="authenticate"):
        codec.decode(bytes(encoded))
    with pytest.raises(CodecError, match="authenticate"):
        durable.AesGcmCodec({"k1": os.urandom(32)}).decode(codec.encode(b"x"))
    with pytest.raises(CodecError, match="not a payload"):
        codec.decode(b"\x09junk")


@pytest.mark.parametrize("args, error", [
    (({},), ArgumentTypeError),
    (("k",), ArgumentTypeError),
    (({"k1": "not bytes"},), ArgumentTypeError),
    (({"k1": b"short"},), InvalidArgumentError),
    (({"": K1},), InvalidArgumentError),
    (({"k1": K1, "k2": K2},), InvalidArgumentError),  # which one is current?
    (({"k1": K1}, "k9"), InvalidArgumentError),
])
def test_aes_gcm_refuses_bad_keys(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        durable.AesGcmCodec(*args)


def test_zlib_compresses_large_payloads_only_and_refuses_foreign_bytes() -> None:
    codec = durable.ZlibCodec(min_size=100)
    assert codec.encode(b"small") == b"\x00small"
    big = b"abc" * 1000
    assert len(codec.encode(big)) < 100 and codec.decode(codec.encode(big)) == big
    with pytest.raises(CodecError, match="ZlibCodec"):
        codec.decode(b"\x07abc")
    with pytest.raises(ArgumentTypeError):
        durable.ZlibCodec(level="9")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        durable.ZlibCodec(level=10)
    with pytest.raises(InvalidArgumentError):
        durable.CodecChain()


class Broken:
    """A codec whose decode fails, and whose encode returns the wrong type."""

    def encode(self, data: bytes) -> bytes:
        return data.decode("latin-1")  # type: ignore[return-value]

    def decode(self, data: bytes) -> bytes:
        raise RuntimeError("the key server is down")


def test_a_codec_that_fails_gives_a_codec_error_naming_the_payload() -> None:
    boundary = PayloadCodec(Broken())
    with pytest.raises(CodecError, match="returned a str, not bytes") as exc:
        boundary.encode({"a": 1}, "payload of event 'x'")
    assert exc.value.where == "payload of event 'x'" and exc.value.codec == "Broken"
    good = PayloadCodec(durable.ZlibCodec())
    with pytest.raises(CodecError, match="the key server is down") as exc:
        boundary.decode(good.encode([1, 2], "args"), "ActionScheduled.args[0]")
    assert exc.value.where == "ActionScheduled.args[0]"
    assert isinstance(exc.value.__cause__, RuntimeError)


@pytest.mark.parametrize("codec", [object(), "aes", durable.ZlibCodec, 42])
async def test_connect_refuses_what_is_not_a_codec(codec: Any) -> None:
    with pytest.raises(ArgumentTypeError, match="durable.Codec"):
        durable.connect("memory://", codec=codec)
    with pytest.raises(ArgumentTypeError, match="durable.Codec"):
        durable.Client(MemoryStore(), codec=codec)


@pytest.mark.parametrize("limit, error", [
    ("2MB", ArgumentTypeError), (2.5e6, ArgumentTypeError), (True, ArgumentTypeError),
    (100, InvalidArgumentError), (2**40, InvalidArgumentError),
])
def test_connect_refuses_a_bad_payload_limit(limit: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_payload_bytes"):
        durable.connect("memory://", max_payload_bytes=limit)


def test_the_cli_loads_a_codec_by_module_and_attribute() -> None:
    assert isinstance(load_codec("durable:ZlibCodec"), durable.ZlibCodec)  # called: a factory
    with pytest.raises(UsageError, match="module:attribute"):
        load_codec("durable.ZlibCodec")
    with pytest.raises(UsageError, match="no_such"):
        load_codec("durable:no_such")
    with pytest.raises(ArgumentTypeError):
        load_codec("durable:Event")
