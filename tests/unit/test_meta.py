"""The business time zone recorded with the data, and a different one refused."""

from __future__ import annotations

import pytest

from streams.common.errors import SettingsError
from streams.common.keys import KeyLayout
from streams.store.meta import check_timezone


class Hashes:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}

    def hsetnx(self, name: str, key: str, value: str) -> object:
        return self.data.setdefault(name, {}).setdefault(key, value) == value

    def hget(self, name: str, key: str) -> object:
        return self.data.get(name, {}).get(key)


def test_the_first_writer_records_and_a_later_zone_is_refused() -> None:
    store, layout = Hashes(), KeyLayout("kpi")
    check_timezone(store, layout, "Asia/Shanghai", record=False)  # a reader records nothing
    assert store.data == {}
    check_timezone(store, layout, "Asia/Shanghai", record=True)
    check_timezone(store, layout, "Asia/Shanghai", record=True)
    check_timezone(store, layout, "Asia/Shanghai", record=False)
    for record in (True, False):
        with pytest.raises(SettingsError, match=r"Europe/Berlin but .* written in Asia/Shanghai"):
            check_timezone(store, layout, "Europe/Berlin", record=record)
    assert store.data == {"kpi:meta": {"business_timezone": "Asia/Shanghai"}}
    check_timezone(store, KeyLayout("other"), "Europe/Berlin", record=True)  # its own prefix
