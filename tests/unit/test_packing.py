"""Packed apply arguments: ``<length in bytes>:<bytes>`` back to back, any text."""

from hypothesis import given
from hypothesis import strategies as st

from streams.sink import pack_members_list


def unpack(packed: bytes) -> list[str]:
    """What the Lua apply script does with a packed argument."""
    out, pos = [], 0
    while pos < len(packed):
        colon = packed.index(b":", pos)
        size = int(packed[pos:colon])
        out.append(packed[colon + 1 : colon + 1 + size].decode())
        pos = colon + 1 + size
    return out


def test_ascii_and_non_ascii_members_round_trip() -> None:
    items = ["/p/1", "", "广告:渠道", "a:b:c", "x" * 600, "é"]
    packed = pack_members_list(items)
    assert unpack(packed) == items
    assert packed.startswith(b"4:/p/10:13:")  # "" packs as "0:"
    assert b"13:\xe5\xb9\xbf" in packed  # byte length of 广告:渠道, not its 5 characters


@given(st.lists(st.text(), max_size=30))
def test_any_text_round_trips(items: list[str]) -> None:
    assert unpack(pack_members_list(items)) == items
