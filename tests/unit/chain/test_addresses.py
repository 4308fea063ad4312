"""Addresses: bech32m round trips; typos, other networks and plain bech32 are refused."""

from __future__ import annotations

import pytest
from bech32m import codecs as bech32
from hypothesis import given
from hypothesis import strategies as st

from chain.crypto import AddressError, decode_address, encode_address
from chain.errors import RejectKind

ACCOUNT = bytes(range(20))
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


@given(st.binary(min_size=20, max_size=20), st.sampled_from(["ntk", "tntk"]))
def test_round_trip(account: bytes, hrp: str) -> None:
    text = encode_address(account, hrp)
    assert text.startswith(hrp + "1")
    assert decode_address(text, hrp) == account


@given(st.binary(min_size=20, max_size=20), st.data())
def test_any_one_character_typo_is_caught(account: bytes, data: st.DataObject) -> None:
    text = encode_address(account, "ntk")
    position = data.draw(st.integers(len("ntk1"), len(text) - 1))
    replacement = data.draw(st.sampled_from(CHARSET).filter(lambda c: c != text[position]))
    typo = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(AddressError) as info:
        decode_address(typo, "ntk")
    assert info.value.reason == "bad-address"
    assert info.value.kind is RejectKind.MALFORMED


def test_wrong_prefix_is_refused() -> None:
    devnet_address = encode_address(ACCOUNT, "tntk")
    with pytest.raises(AddressError, match="prefix 'tntk' is not this network's 'ntk'"):
        decode_address(devnet_address, "ntk")


def test_bech32_not_m_is_refused() -> None:
    data = bech32.convertbits(ACCOUNT, 8, 5, True)
    plain = bech32.bech32_encode("ntk", bytes(data), bech32.Encoding.BECH32)
    assert plain != encode_address(ACCOUNT, "ntk")
    with pytest.raises(AddressError, match="bech32m"):
        decode_address(plain, "ntk")


@pytest.mark.parametrize(
    "text",
    ["", "ntk1", "not an address", "ntk1" + "q" * 100, "NTK1QQQQ", "ntk1qqqqqqqqqqqqqqqqqqqqqqqqqqqq"],
)
def test_junk_is_refused(text: str) -> None:
    with pytest.raises(AddressError):
        decode_address(text, "ntk")


def test_wrong_payload_length_is_refused() -> None:
    data = bech32.convertbits(bytes(19), 8, 5, True)
    short = bech32.bech32_encode("ntk", bytes(data), bech32.Encoding.BECH32M)
    with pytest.raises(AddressError, match="payload length"):
        decode_address(short, "ntk")


def test_encode_refuses_a_wrong_sized_account() -> None:
    with pytest.raises(AddressError, match="20 bytes"):
        encode_address(bytes(19), "ntk")
