"""The project's exception tree.

KpiError
├── SettingsError      a KPI_* environment variable is missing or malformed
├── DecodeError        an event cannot be accepted (carries a RejectReason)
└── SinkError          Redis refused or lost a batch apply
"""

from __future__ import annotations


class KpiError(Exception):
    """Root of every error the service raises on purpose."""


class SettingsError(KpiError):
    """A setting from the environment is invalid; the message names the variable."""


class SinkError(KpiError):
    """A batch could not be applied to Redis."""
