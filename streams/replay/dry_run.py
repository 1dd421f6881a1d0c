"""What a dry run shows: the main KPIs per business day, read from the in-memory twin.

The same reader and KPI definitions as the exporter and the report
(:class:`~streams.store.reader.StoreReader` over :class:`~streams.store.memory_reads.MemoryReads`,
:data:`~streams.kpi.formulas.BY_NAME`), so a dry run's figures are the ones a replay into
Redis would export for those days (distinct counts exact instead of HyperLogLog estimates).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from streams.common.keys import KeyLayout
from streams.common.settings import Settings
from streams.common.timebuckets import Granularity
from streams.kpi.formulas import BY_NAME, WindowFigures
from streams.store.memory_reads import MemoryReads
from streams.store.memory_sink import MemorySink
from streams.store.reader import Window
from streams.worker.runtime import store_reader

HEADER = (
    f"{'day':<12}{'PV':>10}{'UV':>9}{'sessions':>10}{'bounce':>8}{'orders':>8}"
    f"{'GMV':>14}{'buyers':>8}{'pay conv':>9}"
)
SERVICE_HEADER = (
    f"{'day':<12}{'conversations':>14}{'customer msgs':>14}{'responses':>10}"
    f"{'in SLA':>8}{'1st resp s':>11}{'complaints':>11}{'ad spend':>12}"
)
"""Customer service and marketing: a dry run of chat or cost files shows these."""


def dry_run_summary(sink: MemorySink, settings: Settings) -> str:
    """A table of the main KPIs per business day of what the dry run applied."""
    days = sorted(
        {
            bucket
            for store in sink.shards.values()
            for bucket, _ in (*store.counters, *store.distinct)
            if bucket.granularity is Granularity.DAY
        }
    )
    reader = store_reader(settings, MemoryReads(sink, KeyLayout(settings.redis_prefix)))
    figures = reader.read(0.0, [Window(str(day.start), (day,)) for day in days]).windows
    zone = ZoneInfo(settings.business_timezone)
    lines = [HEADER, "-" * len(HEADER)]
    for day in days:
        f = figures[str(day.start)]
        bounce = BY_NAME["bounce_rate"].value(f)
        conversion = BY_NAME["payment_conversion"].value(f)
        lines.append(
            f"{datetime.fromtimestamp(day.start, zone).date().isoformat():<12}"
            f"{f.c('pv'):>10,}{f.d('uv'):>9,}{f.c('sessions'):>10,}"
            f"{'-' if bounce is None else f'{bounce:.1%}':>8}{f.c('orders_paid'):>8,}"
            f"{f.c('gmv_cents') / 100:>14,.2f}{f.d('payers'):>8,}"
            f"{'-' if conversion is None else f'{conversion:.2%}':>9}"
        )
    service = [str(day.start) for day in days if _has_service(figures[str(day.start)])]
    if service:
        lines += ["", SERVICE_HEADER, "-" * len(SERVICE_HEADER)]
        for key in service:
            f = figures[key]
            responses = f.c("cs_responses")
            in_sla = f.c("cs_responses_within_sla") / responses if responses else None
            first = f.c("cs_first_responses")
            wait = f.c("cs_first_response_ms") / first / 1000 if first else None
            lines.append(
                f"{datetime.fromtimestamp(int(key), zone).date().isoformat():<12}"
                f"{f.c('cs_conversations'):>14,}{f.c('cs_customer_messages'):>14,}"
                f"{responses:>10,}{'-' if in_sla is None else f'{in_sla:.1%}':>8}"
                f"{'-' if wait is None else f'{wait:.1f}':>11}{f.c('complaints_opened'):>11,}"
                f"{f.c('spend_cents') / 100:>12,.2f}"
            )
    return "\n".join(lines)


def _has_service(f: WindowFigures) -> bool:
    """Whether a day has chat or marketing figures."""
    return any(
        f.c(name)
        for name in ("cs_conversations", "cs_customer_messages", "complaints_opened", "spend_cents")
    )
