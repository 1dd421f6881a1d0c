"""The root of the service's exceptions, and the ones no single layer owns.

The ``kpi`` command prints a :class:`KpiError` as a one-line message and exits
with status 2; anything else propagates with its traceback. Defined here::

    KpiError               also raised as is (a bad command-line option, Kafka unreachable)
    ├── SettingsError      a KPI_* variable (or its KPI_*_FILE) is unknown, malformed or
    │                      out of range
    └── SinkError          reserved for a batch Redis refuses (nothing raises it yet)

Layers subclass :class:`KpiError` next to the code that raises it (the scorecard
file, replay sources, backfill, PromQL queries). An invalid event is not an
exception: decoding returns a :class:`~streams.ingest.events.Rejection` with its
reason, so one bad message cannot stop a batch.
"""

from __future__ import annotations


class KpiError(Exception):
    """Root of every error the service raises on purpose."""


class SettingsError(KpiError):
    """A setting from the environment is invalid; the message names the variable."""


class SinkError(KpiError):
    """A batch could not be applied to Redis.

    Nothing raises it yet: the worker retries lost or timed-out connections until
    Redis is back (``streams.worker.pipeline``), and other Redis errors surface as
    redis-py's own exceptions.
    """
