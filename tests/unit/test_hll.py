"""Redis's HyperLogLog encodings decoded by hand-written reference packers.

The references below write the format bit by bit from the description in
``streams/store/hll.py`` (Redis's ``hyperloglog.c``); the estimator is compared with
Redis itself in ``tests/integration/test_hll_union.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.store.hll import REGISTERS, HllFormatError, count, count_union, registers, union

HEADER_DENSE = b"HYLL" + bytes([0, 0, 0, 0]) + bytes(8)
HEADER_SPARSE = b"HYLL" + bytes([1, 0, 0, 0]) + bytes(8)


def pack_dense(values: list[int]) -> bytes:
    """Register i's 6 bits at bit 6 * i, least significant first."""
    bits = bytearray(REGISTERS * 6 // 8)
    for i, value in enumerate(values):
        for bit in range(6):
            if value >> bit & 1:
                position = 6 * i + bit
                bits[position // 8] |= 1 << (position % 8)
    return HEADER_DENSE + bytes(bits)


def pack_sparse(values: list[int]) -> bytes:
    """Runs of zeros as ZERO / XZERO, runs of one value (1..32) as VAL of up to 4."""
    out = bytearray()
    i = 0
    while i < REGISTERS:
        j = i
        while j < REGISTERS and values[j] == values[i]:
            j += 1
        run, value = j - i, values[i]
        while run:
            if value == 0:
                take = min(run, 16_384)
                if take <= 64:
                    out.append(take - 1)
                else:
                    out += bytes([0x40 | (take - 1) >> 8, (take - 1) & 0xFF])
            else:
                take = min(run, 4)
                out.append(0x80 | (value - 1) << 2 | (take - 1))
            run -= take
        i = j
    return HEADER_SPARSE + bytes(out)


def _dense_values(seed: int) -> list[int]:
    return [int(v) for v in np.random.default_rng(seed).integers(0, 52, REGISTERS)]


register_values = st.integers(0, 2**32 - 1).map(_dense_values) | st.builds(
    lambda cells: [cells.get(i, 0) for i in range(REGISTERS)],
    st.dictionaries(st.integers(0, REGISTERS - 1), st.integers(1, 51), max_size=300),
)


@settings(max_examples=60, deadline=None)
@given(register_values)
def test_dense_strings_decode_to_their_registers(values: list[int]) -> None:
    assert registers(pack_dense(values)).tolist() == values


@settings(max_examples=60, deadline=None)
@given(register_values.map(lambda v: [min(x, 32) for x in v]))
def test_sparse_strings_decode_to_their_registers(values: list[int]) -> None:
    assert registers(pack_sparse(values)).tolist() == values


def test_empty_and_missing_count_zero_and_one_member_counts_one() -> None:
    assert count(registers(None)) == 0
    assert count(registers(HEADER_SPARSE + bytes([0x7F, 0xFF]))) == 0  # XZERO 16384
    one = [0] * REGISTERS
    one[123] = 1
    assert count(registers(pack_sparse(one))) == 1
    assert count_union([pack_sparse(one), None, pack_dense(one)]) == 1


def test_the_union_is_the_register_wise_maximum() -> None:
    a = np.zeros(REGISTERS, dtype=np.uint8)
    b = np.zeros(REGISTERS, dtype=np.uint8)
    a[:3], b[1:4] = [1, 5, 2], [3, 1, 7]
    assert union([a, b])[:5].tolist() == [1, 5, 2, 7, 0]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"HYLX" + bytes(12),
        HEADER_DENSE + bytes(100),
        b"HYLL" + bytes([7]) + bytes(11),
        HEADER_SPARSE + bytes([0x7F]),  # cut inside XZERO
        HEADER_SPARSE + bytes([0x00]),  # covers 1 register
    ],
)
def test_damaged_strings_are_refused(raw: bytes) -> None:
    with pytest.raises(HllFormatError):
        registers(raw)


@settings(max_examples=80, deadline=None)
@given(register_values.map(lambda v: [min(x, 32) for x in v]))
def test_both_sparse_decoders_agree_whatever_the_length(values: list[int]) -> None:
    # The walk serves short strings and the array form long ones; each must decode both.
    from streams.store.hll import _sparse_arrays, _sparse_walk

    body = pack_sparse(values)[16:]
    assert _sparse_walk(body).tolist() == values
    assert _sparse_arrays(body).tolist() == values


@pytest.mark.parametrize("body", [bytes([0x7F]), bytes([0x00]), b"", bytes([0x7F, 0xFF, 0x80])])
def test_both_sparse_decoders_refuse_damage(body: bytes) -> None:
    from streams.store.hll import _sparse_arrays, _sparse_walk

    for decode in (_sparse_walk, _sparse_arrays):
        with pytest.raises(HllFormatError):
            decode(body)
