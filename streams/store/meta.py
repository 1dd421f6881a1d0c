"""What the stored data was written with, checked at start: the business time zone.

Day, week and month buckets start at midnight in ``KPI_BUSINESS_TIMEZONE``; data written
in one zone and read in another finds no bucket where it looks, and day and week figures
read 0 without a word. The first writer records its zone under the prefix
(:meth:`~streams.common.keys.KeyLayout.meta`, field ``business_timezone``); every later
writer and reader compares its own and refuses to start on a mismatch.
"""

from __future__ import annotations

from typing import Protocol

from streams.common.errors import SettingsError
from streams.common.keys import KeyLayout
from streams.common.settings import env_name

TIMEZONE_FIELD = "business_timezone"


class MetaClient(Protocol):
    """The two hash commands used (redis-py's blocking client, one node or a cluster)."""

    def hsetnx(self, name: str, key: str, value: str) -> object: ...  # noqa: D102
    def hget(self, name: str, key: str) -> object: ...  # noqa: D102


def check_timezone(client: MetaClient, layout: KeyLayout, zone: str, *, record: bool) -> None:
    """Record ``zone`` if nothing is recorded and ``record``; refuse a different one.

    Raises :class:`SettingsError` naming both zones and the prefix.
    """
    key = layout.meta()
    if record:
        client.hsetnx(key, TIMEZONE_FIELD, zone)
    stored = client.hget(key, TIMEZONE_FIELD)
    if isinstance(stored, bytes):
        stored = stored.decode()
    if stored is not None and stored != zone:
        raise SettingsError(
            f"{env_name('business_timezone')}={zone} but the data under prefix "
            f"{layout.prefix!r} was written in {stored}: its days and weeks start at midnight "
            f"there. Set {env_name('business_timezone')}={stored}, or write to a new "
            f"{env_name('redis_prefix')} and replay the history into it"
        )
