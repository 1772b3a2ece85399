"""Properties of the payload codecs: whatever bytes or payload goes in comes back out, and
an encrypted payload does not show what it holds."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import durable
from durable._codecs import EXT_CODE, PayloadCodec
from durable._payloads import dump_value

KEYS = {"k1": os.urandom(16), "k2": os.urandom(32)}
CODECS: list[durable.Codec] = [
    durable.AesGcmCodec(KEYS, current="k2"),
    durable.ZlibCodec(min_size=0),
    durable.ZlibCodec(level=1),
    durable.CodecChain(durable.ZlibCodec(min_size=8), durable.AesGcmCodec(KEYS, current="k1")),
]
plain = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
              st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=16)


@given(st.sampled_from(CODECS), st.binary(max_size=4096))
def test_decode_inverts_encode_for_any_bytes(codec: durable.Codec, data: bytes) -> None:
    encoded = codec.encode(data)
    assert type(encoded) is bytes
    assert codec.decode(encoded) == data


@given(st.binary(min_size=8, max_size=512))
def test_an_encrypted_payload_hides_it_and_a_rotated_codec_reads_it(data: bytes) -> None:
    old = durable.AesGcmCodec({"k1": KEYS["k1"]})
    encoded = old.encode(data)
    assert data not in encoded and encoded != old.encode(data)  # a fresh nonce each time
    assert durable.AesGcmCodec(KEYS, current="k2").decode(encoded) == data


@given(st.sampled_from(CODECS), plain)
def test_a_payload_comes_back_as_the_store_would_give_it_without_a_codec(
        codec: durable.Codec, value: Any) -> None:
    payload = dump_value(value, "test")
    boundary = PayloadCodec(codec)
    encoded = boundary.encode(payload, "test")
    if payload is None:
        assert encoded is None  # None carries nothing
    else:
        assert encoded.code == EXT_CODE
    assert boundary.decode(encoded, "test") == payload
    assert boundary.decode(payload, "test") == payload  # written before the codec: as it is
