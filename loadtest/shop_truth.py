"""The shop traffic's ground truth: exact KPI answers from the event documents alone.

:class:`ShopTruth` records the valid documents :mod:`loadtest.shop_generator` sends
(or any others, in any order) and answers what every KPI should be, with this
module's own label mapping, bucketing, session and conversation logic and its own
copy of the service's contract (allow-lists, topics and keys, session timeout, SLA,
response-time bins). It never imports the service's code (``streams``): an oracle
that shared the code under test would agree with its bugs, so a comparison between
the two can fail. Unit tests check that every copied constant still equals the
service's.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

SESSION_TIMEOUT_MS = 1_800_000
"""A view strictly more than this after the visitor's previous view starts a new session."""
SLA_MS = 30_000
"""A customer-service response within this counts as within the SLA (inclusive)."""
RESPONSE_BINS_S = (
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    1200,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    172800,
)
"""Upper bounds (seconds, inclusive) of the response-time histogram's ``le`` labels.

Written out here rather than imported from ``streams.common.keys.RESPONSE_BINS_S`` on
purpose: the truth stays independent of the code under test, so a bin dropped or moved
in the service fails the KPI comparison instead of moving the truth with it. A unit
test checks that the two tuples are equal.
"""
GRANULARITIES = ("m", "h", "d", "w", "M")
RANKED = ("h", "d", "w", "M")  # rankings are not kept per minute
REPEAT = ("d", "w", "M")  # repeat purchase and new-member payers
UNIQUE_PV_SEPARATOR = "\x1f"

ALLOW_LISTS: dict[str, tuple[str, ...]] = {
    "channels": ("search", "ads", "social", "direct", "email", "affiliate", "other"),
    "page_types": (
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
    ),
    "devices": ("app", "mobile_web", "pc", "other"),
    "campaigns": ("double11", "double12", "618", "newyear", "other"),
}
"""The service's default allow-lists (a copy, on purpose): other values count as ``other``."""

# Topic kind and partition-key field of every event type (a copy of the schema, on purpose).
TOPIC_OF = {
    **dict.fromkeys(
        ("page_view", "click", "add_to_cart", "ad_impression", "registration", "login"),
        "clickstream",
    ),
    **dict.fromkeys(
        ("order_created", "order_paid", "order_cancelled", "order_refunded", "review"), "orders"
    ),
    **dict.fromkeys(
        (
            "customer_message",
            "agent_message",
            "bot_message",
            "conversation_closed",
            "complaint_opened",
            "complaint_resolved",
        ),
        "chat",
    ),
    "cost_report": "marketing",
    "stock_snapshot": "orders",
}
KEY_OF = {
    **{t: "visitor_id" for t, kind in TOPIC_OF.items() if kind == "clickstream"},
    **{t: "member_id|visitor_id" for t, kind in TOPIC_OF.items() if kind == "orders"},
    **{t: "conversation_id" for t, kind in TOPIC_OF.items() if kind == "chat"},
    "cost_report": "channel",
    "stock_snapshot": "warehouse_id",
}
"""The field keying each type's messages; ``a|b``: ``a`` when present, else ``b`` (orders
go by the buyer: the member, else the visitor)."""
TOPIC_KINDS = ("clickstream", "orders", "chat", "marketing")
"""The four topic kinds, in the order :class:`~loadtest.shop_generator.ShopTraffic` lists them."""

_Key = tuple[str, int, str, str, str]  # granularity, bucket start, name, dimension, value
_Buckets = tuple[tuple[str, int], ...]


class _View(NamedTuple):
    ms: int
    seq: int
    page: str
    page_type: str
    channel: str
    device: str | None
    campaign: str | None


class _ChatEvent(NamedTuple):
    ms: int
    seq: int
    type: str
    conversation: str
    agent: str
    complaint: str
    satisfied: bool


@dataclass
class _Conversation:
    first_customer_ms: int | None = None
    waiting_since_ms: int | None = None
    responded: bool = False
    agent: str = ""


@dataclass
class _Derived:
    """Figures that need a visitor's or a conversation's events in time order."""

    counts: defaultdict[_Key, int] = field(default_factory=lambda: defaultdict(int))
    ranks: defaultdict[tuple[str, int, str], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    repeat: defaultdict[tuple[str, int], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    lifetime: Counter[str] = field(default_factory=Counter)
    waiting: dict[str, int] = field(default_factory=dict)
    agent_open: Counter[str] = field(default_factory=Counter)


class ShopTruth:
    """Exact KPI answers, computed from the valid event documents recorded here.

    Labels are mapped onto the allow-lists (anything else is ``other``; an empty or
    absent optional label is no dimension), money becomes integer cents with
    ``round(yuan * 100)``, and buckets are cut in the business time zone and named
    by the epoch second of their local start. Figures that depend on order
    (sessions, conversations, repeat purchase) are derived lazily, in event time,
    so documents may be recorded in any order.
    """

    def __init__(
        self,
        timezone: str = "Asia/Shanghai",
        allow_lists: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)
        lists = ALLOW_LISTS if allow_lists is None else allow_lists
        self._allowed = {name: frozenset(values) for name, values in lists.items()}
        self.rejected: Counter[tuple[str, str]] = Counter()
        """Injected invalid messages by (topic kind, reject reason)."""
        self.events: Counter[str] = Counter()
        """Valid events recorded, by type."""
        self.flush_ms: int | None = None
        self.input_ended = False
        self._counts: defaultdict[_Key, int] = defaultdict(int)
        self._sets: defaultdict[_Key, set[str]] = defaultdict(set)
        self._ranks: defaultdict[tuple[str, int, str], Counter[str]] = defaultdict(Counter)
        self._seen: dict[str, set[int]] = {g: set() for g in GRANULARITIES}
        self._minute_cache: dict[int, _Buckets] = {}
        self._views: defaultdict[str, list[_View]] = defaultdict(list)
        self._chat: list[_ChatEvent] = []
        self._paid: list[tuple[int, str]] = []
        self._seq = 0
        self._derived: _Derived | None = None

    # --- recording ---------------------------------------------------------------------

    def record(self, doc: Mapping[str, Any]) -> None:
        """Count one valid event document (as produced: raw labels, yuan, ISO times)."""
        kind = doc["type"]
        ms = self._time_ms(doc["event_time"])
        self._seq += 1
        self.events[kind] += 1
        buckets = self._buckets(ms)
        for gran, start in buckets:
            self._seen[gran].add(start)
        if TOPIC_OF[kind] == "chat":
            self._on_chat(doc, ms)
        else:
            getattr(self, f"_on_{kind}")(doc, ms, buckets)

    def record_rejected(self, topic: str, reason: str) -> None:
        """Count one injected invalid message; it changes no KPI."""
        self.rejected[(topic, reason)] += 1

    def add_flush(self, flush: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Record the flush page views of :func:`flush_events`: every earlier session closes.

        They are real page views (PV, UV, a session each); a visitor's last session
        counts as closed when a flush came more than the session timeout after it.
        """
        for _, _, value in flush:
            doc = json.loads(value)
            self.record(doc)
            ms = self._time_ms(doc["event_time"])
            self.flush_ms = ms if self.flush_ms is None else max(self.flush_ms, ms)
        self._derived = None

    def end_input(self) -> None:
        """The input has ended and its end closes every visit (``kpi replay --close-at-end``)."""
        self.input_ended = True
        self._derived = None

    # --- queries -----------------------------------------------------------------------

    def counter(self, gran: str, start: int, name: str, dim: str = "", value: str = "") -> int:
        """A counter in one bucket: the total (``dim`` "") or one dimension value."""
        key = (gran, start, name, dim, value)
        return self._counts.get(key, 0) + self._derive().counts.get(key, 0)

    def distinct(self, gran: str, start: int, name: str, dim: str = "", value: str = "") -> int:
        """Exact distinct count in one bucket (overall when ``dim`` is "")."""
        return len(self._sets.get((gran, start, name, dim, value), ()))

    def members(
        self, gran: str, starts: Iterable[int], name: str, dim: str = "", value: str = ""
    ) -> set[str]:
        """The members of a distinct set, united over ``starts`` (to diff with the service)."""
        united: set[str] = set()
        for start in starts:
            united |= self._sets.get((gran, start, name, dim, value), set())
        return united

    def distinct_over(
        self, gran: str, starts: list[int], name: str, dim: str = "", value: str = ""
    ) -> int:
        """Distinct count of the union over several buckets (rolling windows)."""
        return len(self.members(gran, starts, name, dim, value))

    def ranking(self, gran: str, start: int, name: str) -> Counter[str]:
        """Scores of a ranking in one bucket (empty for minutes, which keep none)."""
        scores = Counter(self._ranks.get((gran, start, name), Counter()))
        scores.update(self._derive().ranks.get((gran, start, name), Counter()))
        return scores

    def repeat_distribution(self, gran: str, start: int) -> dict[int, int]:
        """Buyers by number of paid orders in the bucket: keys 1..6, 6 meaning 6 or more."""
        return _distribution(self._derive().repeat.get((gran, start), Counter()))

    def visitors_by_views(self, gran: str, start: int) -> tuple[int, int]:
        """Visitors of an hour or day bucket with exactly one page view in it, and with more."""
        per_visitor = Counter(
            visitor
            for visitor, views in self._views.items()
            for view in views
            if (gran, start) in self._buckets(view.ms)
        )
        one = sum(1 for n in per_visitor.values() if n == 1)
        return one, len(per_visitor) - one

    def repeat_lifetime(self) -> dict[int, int]:
        """Buyers by number of paid orders over everything recorded (keys 1..6)."""
        return _distribution(self._derive().lifetime)

    def waiting_at_end(self) -> dict[str, int]:
        """Open conversations whose customer still waits for an agent: id -> since (ms)."""
        return dict(self._derive().waiting)

    def agent_open_at_end(self) -> dict[str, int]:
        """Open conversations per agent at the end (every agent that was assigned, even 0)."""
        return dict(self._derive().agent_open)

    def buckets(self, gran: str) -> list[int]:
        """Starts of every bucket of ``gran`` holding at least one valid event."""
        return sorted(self._seen[gran])

    def bucket_of(self, gran: str, ms: int) -> int:
        """Start (epoch second) of the bucket of ``gran`` holding ``ms``."""
        return dict(self._buckets(ms))[gran]

    # --- normalisation and bucketing ---------------------------------------------------

    def _label(self, value: object, allow_list: str, required: bool) -> str | None:
        if value is None or value == "":
            return "other" if required else None
        return value if isinstance(value, str) and value in self._allowed[allow_list] else "other"

    @staticmethod
    def _time_ms(value: object) -> int:
        if isinstance(value, str):
            return round(datetime.fromisoformat(value).timestamp() * 1000)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        raise ValueError(f"not a time: {value!r}")

    def _buckets(self, ms: int) -> _Buckets:
        minute = ms // 60_000
        cached = self._minute_cache.get(minute)
        if cached is None:
            local = datetime.fromtimestamp(minute * 60, self._zone)
            hour = local.replace(minute=0, second=0, microsecond=0)
            day = datetime(local.year, local.month, local.day, tzinfo=self._zone)
            monday = (day - timedelta(days=day.weekday())).date()
            week = datetime(monday.year, monday.month, monday.day, tzinfo=self._zone)
            month = datetime(local.year, local.month, 1, tzinfo=self._zone)
            cached = (
                ("m", minute * 60),
                ("h", int(hour.timestamp())),
                ("d", int(day.timestamp())),
                ("w", int(week.timestamp())),
                ("M", int(month.timestamp())),
            )
            self._minute_cache[minute] = cached
        return cached

    def _count(self, buckets: _Buckets, name: str, n: int = 1, /, **dims: str | None) -> None:
        _bump(self._counts, buckets, name, n, **dims)

    def _distinct(self, buckets: _Buckets, name: str, member: str, **dims: str | None) -> None:
        sets = self._sets
        for gran, start in buckets:
            sets[(gran, start, name, "", "")].add(member)
            for dim, value in dims.items():
                if value:
                    sets[(gran, start, name, dim, value)].add(member)

    def _rank(self, buckets: _Buckets, name: str, member: object, n: int = 1) -> None:
        if isinstance(member, str) and member:
            ranks = self._ranks
            for gran, start in buckets[1:]:  # every bucket but the minute
                ranks[(gran, start, name)][member] += n

    # --- clickstream -------------------------------------------------------------------

    def _on_page_view(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        visitor, page = doc["visitor_id"], doc["page"]
        channel = self._label(doc.get("channel"), "channels", True) or "other"
        page_type = self._label(doc.get("page_type"), "page_types", True) or "other"
        device = self._label(doc.get("device"), "devices", False)
        campaign = self._label(doc.get("campaign"), "campaigns", False)
        self._count(
            buckets, "pv", channel=channel, page_type=page_type, device=device, campaign=campaign
        )
        self._distinct(buckets, "uv", visitor, channel=channel, device=device, campaign=campaign)
        days = tuple(b for b in buckets if b[0] == "d")
        self._distinct(days, "unique_pv", visitor + UNIQUE_PV_SEPARATOR + page)
        self._rank(buckets, "page_views", page)
        if page_type == "product":
            self._distinct(buckets, "product_viewers", visitor, channel=channel)
            for what in ("product", "category", "brand"):
                attr = "product_id" if what == "product" else what
                self._rank(buckets, f"{what}_views", doc.get(attr))
        elif page_type == "campaign":
            self._distinct(buckets, "campaign_viewers", visitor, campaign=campaign)
        self._views[visitor].append(
            _View(ms, self._seq, page, page_type, channel, device, campaign)
        )
        self._derived = None

    def _on_click(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        self._count(
            buckets,
            "clicks",
            page_type=self._label(doc.get("page_type"), "page_types", True),
            campaign=self._label(doc.get("campaign"), "campaigns", False),
        )
        for what in ("product", "category", "brand"):
            attr = "product_id" if what == "product" else what
            self._rank(buckets, f"{what}_clicks", doc.get(attr))

    def _on_add_to_cart(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        quantity = doc.get("quantity")
        self._count(buckets, "cart_adds", 1 if quantity is None else quantity)
        self._distinct(
            buckets,
            "carters",
            doc["visitor_id"],
            channel=self._label(doc.get("channel"), "channels", True),
        )

    def _on_ad_impression(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        count = doc.get("count")
        self._count(
            buckets,
            "ad_impressions",
            1 if count is None else count,
            channel=self._label(doc.get("channel"), "channels", True),
            campaign=self._label(doc.get("campaign"), "campaigns", False),
        )

    def _on_registration(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        self._count(
            buckets, "registrations", channel=self._label(doc.get("channel"), "channels", True)
        )
        self._distinct(buckets, "active_members", doc["member_id"])

    def _on_login(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        self._count(buckets, "logins")
        self._distinct(buckets, "active_members", doc["member_id"])

    # --- orders ------------------------------------------------------------------------

    def _attribution(self, doc: Mapping[str, Any]) -> dict[str, str | None]:
        return {
            "channel": self._label(doc.get("channel"), "channels", True),
            "campaign": self._label(doc.get("campaign"), "campaigns", False),
        }

    def _on_order_created(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        dims = self._attribution(doc)
        self._count(buckets, "orders_created", **dims)
        self._distinct(buckets, "orderers", doc["visitor_id"], channel=dims["channel"])

    def _on_order_paid(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        dims = self._attribution(doc)
        self._count(buckets, "orders_paid", **dims)
        self._count(buckets, "gmv_cents", round(doc["amount"] * 100), **dims)
        visitor = doc["visitor_id"]
        self._distinct(buckets, "payers", visitor, channel=dims["channel"])
        member = doc.get("member_id")
        if member:
            self._distinct(buckets, "paying_members", member)
            registered = doc.get("member_registered_at")
            if registered is not None:
                joined = dict(self._buckets(self._time_ms(registered)))
                same = tuple(b for b in buckets if b[0] in REPEAT and joined[b[0]] == b[1])
                self._distinct(same, "new_member_payers", member)
        for line in doc.get("items") or ():
            cents = round(line["amount"] * 100)
            for what in ("product", "category", "brand"):
                attr = "product_id" if what == "product" else what
                self._rank(buckets, f"{what}_sales", line.get(attr), cents)
            quantity = line.get("quantity")
            self._count(buckets, "units_sold", 1 if quantity is None else quantity)
            if line.get("cost"):
                self._count(buckets, "cogs_cents", round(line["cost"] * 100))
        self._paid.append((ms, member or visitor))
        self._derived = None

    def _on_order_cancelled(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        self._count(buckets, "orders_cancelled", **self._attribution(doc))

    def _on_order_refunded(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        dims = self._attribution(doc)
        self._count(buckets, "orders_refunded", **dims)
        self._count(buckets, "refund_cents", round(doc["amount"] * 100), **dims)
        if doc.get("returned") is True:
            self._count(buckets, "orders_returned")

    def _on_review(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        self._count(buckets, "reviews")
        if doc["rating"] >= 4:
            self._count(buckets, "good_reviews")

    # --- chat and marketing ------------------------------------------------------------

    def _on_chat(self, doc: Mapping[str, Any], ms: int) -> None:
        self._chat.append(
            _ChatEvent(
                ms,
                self._seq,
                doc["type"],
                doc["conversation_id"],
                doc.get("agent_id") or "",
                doc.get("complaint_id") or "",
                doc.get("satisfied") is True,
            )
        )
        self._derived = None

    def _on_stock_snapshot(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        self._count(buckets, "stock_value_cents", round(doc["stock_value"] * 100))
        self._count(buckets, "stock_snapshots")
        self._distinct(buckets, "warehouses", doc["warehouse_id"])

    def _on_cost_report(self, doc: Mapping[str, Any], ms: int, buckets: _Buckets) -> None:
        dims = self._attribution(doc)
        self._count(buckets, "spend_cents", round(doc["spend"] * 100), **dims)
        impressions = doc.get("impressions")
        if impressions:
            self._count(buckets, "ad_impressions", impressions, **dims)

    # --- order-dependent figures -------------------------------------------------------

    def _derive(self) -> _Derived:
        if self._derived is None:
            derived = _Derived()
            self._derive_sessions(derived)
            self._derive_chat(derived)
            for ms, buyer in self._paid:
                derived.lifetime[buyer] += 1
                for gran, start in self._buckets(ms):
                    if gran in REPEAT:
                        derived.repeat[(gran, start)][buyer] += 1
            self._derived = derived
        return self._derived

    def _derive_sessions(self, out: _Derived) -> None:
        counts = out.counts
        for views in self._views.values():
            views.sort()
            sessions: list[list[_View]] = []
            for view in views:
                if sessions and view.ms - sessions[-1][-1].ms <= SESSION_TIMEOUT_MS:
                    sessions[-1].append(view)
                else:
                    sessions.append([view])
            for index, session in enumerate(sessions):
                first, last = session[0], session[-1]
                starts = self._buckets(first.ms)
                _bump(counts, starts, "sessions", channel=first.channel, device=first.device)
                if first.channel == "ads":
                    _bump(counts, starts, "ad_landings", campaign=first.campaign)
                for this, following in pairwise(session):
                    here = self._buckets(this.ms)
                    gap = following.ms - this.ms
                    _bump(counts, here, "time_on_page_ms", gap, page_type=this.page_type)
                    _bump(counts, here, "time_on_page_views", page_type=this.page_type)
                closed = (
                    index < len(sessions) - 1
                    or self.input_ended
                    or (self.flush_ms is not None and self.flush_ms - last.ms > SESSION_TIMEOUT_MS)
                )
                if not closed:
                    continue
                channel = first.channel
                _bump(counts, starts, "sessions_closed", channel=channel)
                _bump(counts, starts, "session_views", len(session), channel=channel)
                _bump(counts, starts, "session_duration_ms", last.ms - first.ms, channel=channel)
                if len(session) == 1:
                    _bump(counts, starts, "bounces", channel=channel)
                ends = self._buckets(last.ms)
                _bump(counts, ends, "exits", page_type=last.page_type)
                for gran, start in ends:
                    if gran in RANKED:
                        out.ranks[(gran, start, "page_exits")][last.page] += 1

    def _derive_chat(self, out: _Derived) -> None:
        counts = out.counts
        open_: dict[str, _Conversation] = {}
        complaints: dict[str, int] = {}
        for event in sorted(self._chat):
            buckets = self._buckets(event.ms)
            kind = event.type
            if kind == "complaint_opened":
                _bump(counts, buckets, "complaints_opened")
                complaints[event.complaint] = event.ms
            elif kind == "complaint_resolved":
                _bump(counts, buckets, "complaints_resolved")
                if event.satisfied:
                    _bump(counts, buckets, "complaints_satisfied")
                opened = complaints.pop(event.complaint, None)
                if opened is not None:
                    _bump(counts, buckets, "complaints_timed")
                    _bump(counts, buckets, "complaint_handling_ms", event.ms - opened)
            conversation = open_.get(event.conversation)
            if conversation is None:
                # Any chat event of an id that is not open starts a conversation, but a
                # close of a conversation that is not open closes nothing.
                _bump(counts, buckets, "cs_conversations")
                if kind == "conversation_closed":
                    continue
                conversation = open_[event.conversation] = _Conversation()
            if kind == "customer_message":
                _bump(counts, buckets, "cs_customer_messages")
                if conversation.first_customer_ms is None:
                    conversation.first_customer_ms = event.ms
                if conversation.waiting_since_ms is None:
                    conversation.waiting_since_ms = event.ms
            elif kind == "bot_message":
                _bump(counts, buckets, "cs_bot_messages")
            elif kind == "agent_message":
                if conversation.agent != event.agent:
                    if conversation.agent:
                        out.agent_open[conversation.agent] -= 1
                    out.agent_open[event.agent] += 1
                    conversation.agent = event.agent
                if conversation.waiting_since_ms is not None:
                    waited = event.ms - conversation.waiting_since_ms
                    _bump(counts, buckets, "cs_responses")
                    _bump(counts, buckets, "cs_response_ms", waited)
                    _bump(counts, buckets, "cs_response_bin", le=_bin(waited))
                    if waited <= SLA_MS:
                        _bump(counts, buckets, "cs_responses_within_sla")
                    conversation.waiting_since_ms = None
                if not conversation.responded and conversation.first_customer_ms is not None:
                    first = event.ms - conversation.first_customer_ms
                    _bump(counts, buckets, "cs_first_responses")
                    _bump(counts, buckets, "cs_first_response_ms", first)
                    _bump(counts, buckets, "cs_first_response_bin", le=_bin(first))
                    if first <= SLA_MS:
                        _bump(counts, buckets, "cs_first_responses_within_sla")
                    conversation.responded = True
            elif kind == "conversation_closed":
                _bump(counts, buckets, "cs_conversations_closed")
                if conversation.agent:
                    out.agent_open[conversation.agent] -= 1
                del open_[event.conversation]
        out.waiting = {
            key: c.waiting_since_ms for key, c in open_.items() if c.waiting_since_ms is not None
        }


def _bump(
    counts: defaultdict[_Key, int], buckets: _Buckets, name: str, n: int = 1, /, **dims: str | None
) -> None:
    """Add ``n`` to the total ``name`` and to each non-empty dimension value, per bucket."""
    for gran, start in buckets:
        counts[(gran, start, name, "", "")] += n
        for dim, value in dims.items():
            if value:
                counts[(gran, start, name, dim, value)] += n


def _bin(duration_ms: int) -> str:
    for bound in RESPONSE_BINS_S:
        if duration_ms <= bound * 1000:
            return str(bound)
    return "+Inf"


def _distribution(per_buyer: Counter[str]) -> dict[int, int]:
    shape = dict.fromkeys(range(1, 7), 0)
    for n in per_buyer.values():
        if n > 0:
            shape[min(n, 6)] += 1
    return shape
