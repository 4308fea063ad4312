"""Proof of work: compact targets, ASERT difficulty, cumulative work and the nonce search.

The PoW hash is blake2b-256 of the header's canonical encoding, whose last 8 bytes are the nonce.
Everything before the nonce is fixed while mining, so `mine` hashes that prefix once and copies the
hash state per nonce (a midstate), paying only for the last block of input: near C speed.

Difficulty: aserti3-2d as specified for Bitcoin Cash (Jonathan Toomim, 2020), anchored at genesis.
The target of block h+1 depends only on the anchor and the parent's height and timestamp:
``target = anchor_target * 2^((t_parent - t_anchor - spacing * (h_parent - h_anchor)) / half_life)``
evaluated with the same 16.16 fixed-point cubic approximation of 2^x, so every implementation
computes the same bits with integers only.
"""

from __future__ import annotations

from hashlib import blake2b

from chain.hashing import HASH_SIZE

NONCE_SIZE = 8
_RADIX = 1 << 16


def bits_to_target(bits: int) -> int:
    """Expand a compact target (Bitcoin's nBits: 1-byte exponent, 3-byte mantissa)."""
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000:
        raise ValueError("negative compact target")
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def target_to_bits(target: int) -> int:
    """The compact form of ``target``, rounded down (as Bitcoin's GetCompact)."""
    if target <= 0:
        return 0
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        mantissa = target << (8 * (3 - size))
    else:
        mantissa = target >> (8 * (size - 3))
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def is_canonical_bits(bits: int) -> bool:
    """True when ``bits`` is what `target_to_bits` gives for its own expansion."""
    try:
        target = bits_to_target(bits)
    except ValueError:
        return False
    return target > 0 and target_to_bits(target) == bits


def work_of(bits: int) -> int:
    """Expected hashes to meet the target: 2^256 / (target + 1)."""
    return (1 << 256) // (bits_to_target(bits) + 1)


def _trunc_div(a: int, b: int) -> int:
    """C's integer division (towards zero), which the ASERT reference uses."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def asert_bits(
    anchor_bits: int,
    time_diff: int,
    height_diff: int,
    *,
    spacing: int,
    half_life: int,
    pow_limit_bits: int,
) -> int:
    """Compact target for the child of a parent ``height_diff`` blocks and ``time_diff`` s after the anchor."""
    anchor_target = bits_to_target(anchor_bits)
    pow_limit = bits_to_target(pow_limit_bits)
    exponent = _trunc_div((time_diff - spacing * height_diff) * _RADIX, half_life)
    shifts = exponent >> 16
    frac = exponent & 0xFFFF
    factor = _RADIX + (
        (195766423245049 * frac + 971821376 * frac * frac + 5127 * frac * frac * frac + (1 << 47))
        >> 48
    )
    target = anchor_target * factor
    target = target >> -shifts if shifts < 0 else target << shifts
    target >>= 16
    if target == 0:
        return target_to_bits(1)
    if target > pow_limit:
        return pow_limit_bits
    return target_to_bits(target)


def pow_hash(header_bytes: bytes) -> bytes:
    return blake2b(header_bytes, digest_size=HASH_SIZE).digest()


def meets_target(digest: bytes, bits: int) -> bool:
    return int.from_bytes(digest, "big") <= bits_to_target(bits)


def mine(header_bytes: bytes, bits: int, start_nonce: int, count: int) -> int | None:
    """Search nonces ``[start_nonce, start_nonce + count)`` for one meeting ``bits``.

    ``header_bytes`` is the header's canonical encoding (any nonce): its last `NONCE_SIZE` bytes are
    replaced. Returns the winning nonce or None. Runs in worker processes; pure CPU, no I/O.
    """
    prefix = header_bytes[:-NONCE_SIZE]
    midstate = blake2b(prefix, digest_size=HASH_SIZE)
    # Comparing big-endian digests as bytes is comparing them as numbers; no int conversion.
    limit = bits_to_target(bits).to_bytes(HASH_SIZE, "big")
    copy = midstate.copy
    for nonce in range(start_nonce, min(start_nonce + count, 1 << 64)):
        h = copy()
        h.update(nonce.to_bytes(NONCE_SIZE, "little"))
        if h.digest() <= limit:
            return nonce
    return None
