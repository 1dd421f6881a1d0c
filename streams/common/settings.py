"""One frozen settings object, built once at the entry point from ``KPI_*`` variables.

No other module reads the environment. Every variable name is derived here from
the field name (``kafka_bootstrap`` -> ``KPI_KAFKA_BOOTSTRAP``), and
:func:`describe` lists them all for ``--help``.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from streams.common.errors import SettingsError

ENV_PREFIX = "KPI_"
FILE_SUFFIX = "_FILE"
"""``KPI_X_FILE=/run/secrets/x`` reads setting ``KPI_X`` from that file (for secrets)."""

DEFAULT_CHANNELS = ("search", "ads", "social", "direct", "email", "affiliate", "other")
DEFAULT_DEVICES = ("app", "mobile_web", "pc", "other")
DEFAULT_CAMPAIGNS = ("double11", "double12", "618", "newyear", "other")
DEFAULT_PAGE_TYPES = (
    "home",
    "category",
    "product",
    "search",
    "cart",
    "checkout",
    "campaign",
    "login",
    "register",
    "user_center",
    "other",
)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that match ``ops/stack.sh``."""

    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-256"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = dataclasses.field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    redis_url: str = "redis://127.0.0.1:16379/0"
    redis_tls_cafile: str = ""
    redis_tls_certfile: str = ""
    redis_tls_keyfile: str = ""
    redis_prefix: str = "kpi"
    clickstream_topic: str = "clickstream"
    orders_topic: str = "orders"
    chat_topic: str = "chat"
    marketing_topic: str = "marketing"
    dead_letter_topic: str = "kpi-dead-letter"
    topic_partitions: int = 4
    consumer_group: str = "kpi-worker"
    faust_datadir: str = ".stack/faust"
    business_timezone: str = "Asia/Shanghai"
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    page_types: tuple[str, ...] = DEFAULT_PAGE_TYPES
    devices: tuple[str, ...] = DEFAULT_DEVICES
    campaigns: tuple[str, ...] = DEFAULT_CAMPAIGNS
    batch_max_events: int = 5000
    """Records per partition in one fetch: larger batches share the per-batch work (one
    apply, one write per HyperLogLog and ranking touched); 5,000 applied 14-20 % more page
    views per second than 2,000, with 18 % less Redis time per event (docs/benchmarks.md).
    Only a backlog fills a batch: at a steady rate a fetch takes what has arrived."""
    batch_within_seconds: float = 0.5
    max_event_bytes: int = 1_048_576
    max_future_skew_seconds: int = 300
    late_after_seconds: int = 60
    allowed_lateness_seconds: int = 3 * 3_600
    dedupe_minutes: int = 10
    order_dedupe_days: int = 3
    visit_timeout_minutes: int = 30
    conversation_timeout_hours: int = 24
    sla_seconds: int = 30
    agent_cap: int = 5
    exit_min_views: int = 20
    gmv_target_day: float = 0.0
    gmv_target_week: float = 0.0
    gmv_target_month: float = 0.0
    scorecard_file: str = ""
    top_n: int = 20
    minute_retention_seconds: int = 2 * 86_400
    hour_retention_seconds: int = 8 * 86_400
    day_retention_seconds: int = 400 * 86_400
    week_retention_seconds: int = 400 * 86_400
    month_retention_seconds: int = 800 * 86_400
    exporter_host: str = "127.0.0.1"
    exporter_port: int = 19100
    exporter_tls_cert: str = ""
    exporter_tls_key: str = ""
    exporter_basic_auth_user: str = ""
    exporter_basic_auth_password: str = dataclasses.field(default="", repr=False)
    worker_metrics_port: int = 19101
    prometheus_url: str = "http://127.0.0.1:19090"
    grafana_url: str = "http://127.0.0.1:3000"
    grafana_token: str = dataclasses.field(default="", repr=False)  # a secret: never printed
    kafka_session_timeout_seconds: float = 10.0
    health_probe_seconds: float = 5.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.business_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            name = env_name("business_timezone")
            raise SettingsError(
                f"{name}={self.business_timezone!r} is not a known time zone"
            ) from exc
        for name in (
            "topic_partitions",
            "batch_max_events",
            "max_event_bytes",
            "exporter_port",
            "visit_timeout_minutes",
            "conversation_timeout_hours",
            "allowed_lateness_seconds",
            "order_dedupe_days",
            "top_n",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be positive, got {getattr(self, name)}")
        longest = max(self.week_retention_seconds, 62 * 86_400)
        if self.day_retention_seconds < longest:
            raise SettingsError(
                f"{env_name('day_retention_seconds')} must be at least "
                f"{env_name('week_retention_seconds')} and 62 days ({longest} s): the distinct "
                f"counts of a week and of the last month are read from their days"
            )
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.kafka_security_protocol not in protocols:
            raise SettingsError(
                f"{env_name('kafka_security_protocol')} must be one of {', '.join(protocols)}"
            )
        mechanisms = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        if self.kafka_sasl_mechanism not in mechanisms:
            raise SettingsError(
                f"{env_name('kafka_sasl_mechanism')} must be one of {', '.join(mechanisms)}"
            )
        tls_files = (self.redis_tls_cafile, self.redis_tls_certfile, self.redis_tls_keyfile)
        if any(tls_files) and not self.redis_url.startswith("rediss"):
            raise SettingsError(
                f"{env_name('redis_tls_cafile')}, _CERTFILE or _KEYFILE is set but "
                f"{env_name('redis_url')} is not a TLS address (rediss:// or rediss+cluster://)"
            )
        kafka_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if any(kafka_files) and not self.kafka_security_protocol.endswith("SSL"):
            raise SettingsError(
                f"{env_name('kafka_ssl_cafile')}, _CERTFILE or _KEYFILE is set but "
                f"{env_name('kafka_security_protocol')} is {self.kafka_security_protocol}, "
                f"not SSL or SASL_SSL"
            )
        for name in ("channels", "page_types", "devices", "campaigns"):
            values = getattr(self, name)
            if "other" not in values:
                raise SettingsError(f"{env_name(name)} must contain 'other' (the fallback label)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``environ``; unknown ``KPI_*`` names are an error (typos)."""
        known = {env_name(f.name): f for f in fields(cls)}
        stray = sorted(
            k
            for k in environ
            if k.startswith(ENV_PREFIX)
            and k not in known
            and k.removesuffix(FILE_SUFFIX) not in known
        )
        stray = [k for k in stray if k not in STACK_ONLY_VARIABLES]
        if stray:
            raise SettingsError(f"unknown setting(s): {', '.join(stray)}; see `kpi --help`")
        values: dict[str, Any] = {}
        for name, field in known.items():
            raw = environ.get(name)
            path = environ.get(name + FILE_SUFFIX)
            if raw is not None and path is not None:
                raise SettingsError(f"set {name} or {name}{FILE_SUFFIX}, not both")
            if path is not None:
                raw = _read_secret(name + FILE_SUFFIX, path)
            if raw is not None:
                values[field.name] = _parse(name, raw, field.default)
        # The local stack's port variables also point the service at that stack.
        for port_var, field_name, template in _PORT_DERIVED:
            if port_var in environ and field_name not in values:
                port = _parse(port_var, environ[port_var], 0)
                values[field_name] = template.format(port=port)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (and validated again)."""
        return dataclasses.replace(self, **changes)


# Read by ops/stack.sh; the port variables also set the matching address
# below when that address is not given, so one environment serves both.
STACK_ONLY_VARIABLES = frozenset(
    {
        "KPI_STACK_DIR",
        "KPI_KAFKA_PORT",
        "KPI_KAFKA_CONTROLLER_PORT",
        "KPI_REDIS_PORT",
        "KPI_PROMETHEUS_PORT",
        "KPI_SCRAPE_INTERVAL",
        "KPI_CACHE_DIR",
        "KPI_KAFKA_SASL_PORT",
        "KPI_KAFKA_SSL_PORT",
        "KPI_KAFKA_SASL_SSL_PORT",
        "KPI_REDIS_TLS_PORT",
        "KPI_REDIS_CLUSTER_PORT",
        "KPI_REDIS_CLUSTER_TLS_PORT",
        "KPI_STACK_TLS_DIR",
    }
)


_PORT_DERIVED = (
    ("KPI_KAFKA_PORT", "kafka_bootstrap", "127.0.0.1:{port}"),
    ("KPI_REDIS_PORT", "redis_url", "redis://127.0.0.1:{port}/0"),
    ("KPI_PROMETHEUS_PORT", "prometheus_url", "http://127.0.0.1:{port}"),
)


def env_name(field_name: str) -> str:
    """Environment variable that sets ``field_name``."""
    return ENV_PREFIX + field_name.upper()


def describe() -> str:
    """One line per variable with its default, for ``--help``."""
    lines = []
    for f in fields(Settings):
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        lines.append(f"  {env_name(f.name):<32} {shown}")
    return "\n".join(lines)


def _read_secret(name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")
    except OSError as exc:
        raise SettingsError(f"{name}={path!r}: cannot read the file ({exc.strerror})") from exc


def _parse(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            items = tuple(part.strip() for part in raw.split(",") if part.strip())
            if not items:
                raise ValueError("empty list")
            return items
        return raw
    except ValueError as exc:
        kind = type(default).__name__
        raise SettingsError(f"{name}={raw!r} is not a valid {kind}") from exc


def topic_kinds(settings: Settings) -> dict[str, str]:
    """Topic name -> role (``clickstream``, ``orders``, ``chat``, ``marketing``)."""
    return {
        settings.clickstream_topic: "clickstream",
        settings.orders_topic: "orders",
        settings.chat_topic: "chat",
        settings.marketing_topic: "marketing",
    }
