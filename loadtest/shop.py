"""Seeded promotion-night shop traffic on all four topics, with its own exact ground truth.

:func:`generate_shop` plays visitors (sessions of page views, clicks, carts, orders,
payments, refunds, reviews, registrations, logins, ad impressions), customer-service
conversations and per-minute cost reports, and returns the raw messages per topic
kind together with a :class:`ShopTruth`. The truth is computed here, from the
generated event documents, with this module's own label mapping, bucketing and
session and conversation logic, never with the service's code (``streams``), so a
test that compares the two can fail.

:func:`flush_events` gives one late page view per partition: produced last, it moves
every partition's event time on by more than the session timeout, so the service
closes every earlier session and the truth's closed-session figures apply.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate, pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from loadtest.generator import CHANNEL_WEIGHTS, promotion_shape

Doc = dict[str, Any]
"""A JSON event document as produced."""

SESSION_TIMEOUT_MS = 1_800_000
"""A view strictly more than this after the visitor's previous view starts a new session."""
SLA_MS = 30_000
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
    **{
        t: "visitor_id"
        for t, kind in TOPIC_OF.items()
        if kind in ("clickstream", "orders") and t != "stock_snapshot"
    },
    **{t: "conversation_id" for t, kind in TOPIC_OF.items() if kind == "chat"},
    "cost_report": "channel",
    "stock_snapshot": "warehouse_id",
}
TOPIC_KINDS = ("clickstream", "orders", "chat", "marketing")

# --- traffic shape -------------------------------------------------------------------------

DEVICE_WEIGHTS: tuple[tuple[str | None, int], ...] = (
    ("app", 55),
    ("mobile_web", 30),
    ("pc", 13),
    ("tablet", 1),
    (None, 1),
)
# Raw campaign codes; "d11-preheat" is not on the allow-list and must count as "other".
CAMPAIGN_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("double11", 70),
    ("d11-preheat", 10),
    ("double12", 6),
    ("newyear", 5),
    ("618", 4),
    ("other", 2),
)
CAMPAIGN_SHARE = {"ads": 0.85, "social": 0.5, "email": 0.6, "affiliate": 0.3}
FLOW: dict[str, tuple[tuple[str, int], ...]] = {
    "home": (("category", 30), ("search", 25), ("product", 25), ("campaign", 15), ("register", 5)),
    "category": (("product", 60), ("category", 20), ("search", 20)),
    "search": (("product", 70), ("search", 30)),
    "campaign": (("product", 60), ("campaign", 25), ("home", 15)),
    "product": (("product", 35), ("cart", 30), ("category", 20), ("home", 15)),
    "cart": (("checkout", 60), ("product", 40)),
    "checkout": (("user_center", 50), ("home", 30), ("product", 20)),
    "user_center": (("home", 70), ("product", 30)),
    "login": (("home", 60), ("product", 40)),
    "register": (("home", 50), ("product", 50)),
}
ENTRY: dict[str, tuple[tuple[str, int], ...]] = {
    "search": (("product", 60), ("search", 30), ("home", 10)),
    "ads": (("product", 60), ("home", 40)),
    "social": (("product", 50), ("home", 50)),
    "email": (("product", 50), ("user_center", 20), ("home", 30)),
}
CATEGORIES: tuple[str, ...] = ("phones", "laptops", "audio", "tv", "kitchen", "beauty", "shoes")
CATEGORIES += ("sports", "toys", "baby", "books", "snacks", "pets", "home-decor", "furniture")
AGENTS = tuple(f"agent-{n:02d}" for n in range(1, 9))
BAD_KINDS = ("malformed_json", "missing_field", "unknown_type", "out_of_range", "wrong_topic")


class _Product(NamedTuple):
    product_id: str
    category: str
    brand: str | None
    price_cents: int


def _catalog(rng: random.Random) -> list[_Product]:
    brands = [f"brand-{n:02d}" for n in range(40)]
    products = []
    for n in range(400):
        price = int(rng.lognormvariate(5.0, 1.1) * 100)  # yuan, median about 150
        products.append(
            _Product(
                f"sku-{n:04d}",
                rng.choice(CATEGORIES),
                None if rng.random() < 0.05 else rng.choice(brands),
                min(max(price, 990), 1_999_900),
            )
        )
    return products


def _pick(rng: random.Random, weighted: Iterable[tuple[Any, int]]) -> Any:
    items = list(weighted)
    return rng.choices([k for k, _ in items], [w for _, w in items])[0]


def _iso(ms: int, zone: ZoneInfo) -> str:
    moment = datetime.fromtimestamp(ms // 1000, zone).replace(microsecond=ms % 1000 * 1000)
    return moment.isoformat(timespec="milliseconds")


def _yuan(cents: int) -> float:
    return cents / 100


# --- ground truth --------------------------------------------------------------------------

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


# --- generation ----------------------------------------------------------------------------


@dataclass
class ShopTraffic:
    """Raw messages per topic kind, each list in event-time order, and their exact truth."""

    messages: dict[str, list[tuple[bytes, bytes]]]
    truth: ShopTruth
    last_ms: int
    """Latest event time of any message: flush at ``last_ms + 31 minutes`` or later."""


@dataclass
class _Visitor:
    index: int
    visitor_id: str
    device: str | None
    member_id: str | None = None
    registered_ms: int | None = None
    sends_registered_at: bool = True
    orders_wanted: int = 1
    now: int = 0  # time of the visitor's latest event so far (their events stay in order)
    cart: list[tuple[_Product, int | None]] = field(default_factory=list)


@dataclass
class _Session:
    session_id: str
    channel: str
    campaign: str | None  # as sent: None is absent, "" is an empty string


class _Shop:
    """One generation run: the random source, the rows so far and the truth."""

    def __init__(
        self, seed: int, start_ms: int, duration_s: float, timezone: str, bad_ratio: float
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.bad_rng = random.Random(seed * 7919 + 1)  # bad messages never shift good traffic
        self.bad_ratio = bad_ratio
        self.start = start_ms
        self.end = start_ms + int(duration_s * 1000)
        self.zone = ZoneInfo(timezone)
        self.truth = ShopTruth(timezone)
        self.catalog = _catalog(self.rng)
        self.popularity = list(accumulate(1 / (rank + 5) for rank in range(len(self.catalog))))
        self.rows: list[tuple[int, int, str, bytes, bytes]] = []
        self.ids = 0
        self.bad_ids = 0
        self.sessions = 0
        self.orders = 0
        self.members: list[_Visitor] = []
        self.pairs: dict[tuple[str, str | None], int] = {}  # (channel, campaign) -> first use

    # --- output ------------------------------------------------------------------------

    def emit(self, ms: int, kind: str, **fields: object) -> bool:
        """Send one valid event at ``ms``; False (and nothing sent) outside the span."""
        if not self.start <= ms < self.end:
            return False
        self.ids += 1
        doc: Doc = {
            "schema": 1,
            "type": kind,
            "event_id": f"e{self.seed}-{self.start}-{self.ids}",
            "event_time": _iso(ms, self.zone),
        }
        doc.update((k, v) for k, v in fields.items() if v is not None)
        topic = TOPIC_OF[kind]
        key = str(doc[KEY_OF[kind]]).encode()
        self.rows.append((ms, len(self.rows), topic, key, _encode(doc)))
        self.truth.record(doc)
        if self.bad_ratio and self.bad_rng.random() < self.bad_ratio:
            self._bad(ms, topic, key, doc)
        return True

    def _bad(self, ms: int, topic: str, key: bytes, doc: Doc) -> None:
        rng = self.bad_rng
        reason = rng.choice(BAD_KINDS)
        self.bad_ids += 1
        broken = {**doc, "event_id": f"bad{self.seed}-{self.start}-{self.bad_ids}"}
        if reason == "malformed_json":
            value = _encode(broken)[:-7]
        elif reason == "missing_field":
            del broken[KEY_OF[doc["type"]]]
            value = _encode(broken)
        elif reason == "unknown_type":
            broken["type"] = doc["type"] + "_v0"
            value = _encode(broken)
        else:  # a payment with a negative amount, or one sent on the clickstream topic
            paid = {k: v for k, v in broken.items() if k in ("schema", "event_id", "event_time")}
            negative = reason == "out_of_range"
            paid.update(
                type="order_paid",
                visitor_id=f"v{self.seed}-bad",
                order_id=f"bad-{self.bad_ids}",
                channel="search",
                amount=(-1 if negative else 1) * rng.randint(100, 99_999) / 100,
            )
            topic = "orders" if negative else "clickstream"
            key, value = paid["visitor_id"].encode(), _encode(paid)
        self.rows.append((ms, len(self.rows), topic, key, value))
        self.truth.record_rejected(topic, reason)

    def traffic(self) -> ShopTraffic:
        """The rows so far, sorted per topic kind by event time (ties in emission order)."""
        self.rows.sort()
        messages: dict[str, list[tuple[bytes, bytes]]] = {kind: [] for kind in TOPIC_KINDS}
        for _, _, topic, key, value in self.rows:
            messages[topic].append((key, value))
        last = self.rows[-1][0] if self.rows else self.start
        return ShopTraffic(messages, self.truth, last)

    # --- shapes ------------------------------------------------------------------------

    def arrival(self) -> int:
        """A moment in the span, more likely where the promotion shape is high."""
        rng = self.rng
        while True:
            fraction = rng.random()
            if rng.random() * 5.8 < promotion_shape(fraction):
                return self.start + int(fraction * (self.end - self.start))

    def product(self) -> _Product:
        """A product, popular ones more often."""
        return self.rng.choices(self.catalog, cum_weights=self.popularity)[0]

    def gap(self) -> int:
        """Time to the next page view in a session: 3 s to 5 min, mostly short."""
        return min(3000 + int(self.rng.expovariate(1 / 40_000)), 300_000)

    # --- visitors ----------------------------------------------------------------------

    def visitor(self, index: int) -> None:
        """A visitor's whole stay: sessions of views, carts, orders, registration, logins."""
        rng = self.rng
        visitor = _Visitor(index, f"v{self.seed}-{index:06d}", _pick(rng, DEVICE_WEIGHTS))
        share = rng.random()
        if share < 0.3:
            visitor.member_id = f"m{self.seed}-{index:06d}"
            # Members from before the span; some joined earlier today, this week or month.
            visitor.registered_ms = self.start - rng.randint(60_000, 45 * 86_400_000)
            visitor.sends_registered_at = rng.random() < 0.9
            self.members.append(visitor)
        elif share < 0.33 and self.members:
            other = rng.choice(self.members)  # a second device of an existing member
            visitor.member_id, visitor.registered_ms = other.member_id, other.registered_ms
        if rng.random() < 0.02:
            visitor.orders_wanted = rng.randint(2, 7)
        t = self.arrival()
        while True:
            last_view = self.session(visitor, t)
            if last_view is None:
                return
            roll = rng.random()
            if roll < 0.02:
                t = last_view + SESSION_TIMEOUT_MS  # exactly the timeout: still the same visit
            elif roll < 0.04:
                t = last_view + SESSION_TIMEOUT_MS + 1  # one ms more: a new visit
            elif roll < 0.2:
                t = last_view + rng.randint(SESSION_TIMEOUT_MS + 1, 3 * SESSION_TIMEOUT_MS)
            else:
                return

    def session(self, v: _Visitor, t: int) -> int | None:
        """One visit from ``t``; the time of its last view, or None when the span ended."""
        rng = self.rng
        channel = _pick(rng, CHANNEL_WEIGHTS.items())
        campaign: str | None = None
        if rng.random() < CAMPAIGN_SHARE.get(channel, 0.05):
            campaign = _pick(rng, CAMPAIGN_WEIGHTS)
        elif rng.random() < 0.25:
            campaign = ""
        self.sessions += 1
        s = _Session(f"s{self.seed}-{self.sessions}", channel, campaign)
        self.pairs.setdefault((channel, campaign or None), t)
        if channel == "ads" and campaign and rng.random() < 0.6:
            seen = t - rng.randint(2000, 60_000)
            if seen > v.now:
                self.emit(
                    seen,
                    "ad_impression",
                    visitor_id=v.visitor_id,
                    channel=channel,
                    campaign=campaign,
                    device=v.device,
                    count=None if rng.random() < 0.5 else 1,
                )
        buyer = v.orders_wanted > 1
        if buyer:
            views, page_type = 4 + rng.randint(0, 8), "product"
        else:
            views = 1 if rng.random() < 0.32 else 2 + min(int(rng.expovariate(1 / 5)), 40)
            page_type = _pick(rng, ENTRY.get(channel, (("home", 70), ("product", 30))))
            if campaign and channel in ("ads", "social", "email") and rng.random() < 0.6:
                page_type = "campaign"
        if v.member_id and rng.random() < 0.35:
            page_type = "login"
        last_view: int | None = None
        for _ in range(views):
            if not self.view(v, s, t, page_type):
                return None
            last_view = t
            page_type = self.next_page(v, page_type)
            t = max(t + self.gap(), v.now + rng.randint(3000, 30_000))
        return last_view

    def next_page(self, v: _Visitor, page_type: str) -> str:
        """Where the visitor goes next; would-be buyers head for the checkout."""
        rng = self.rng
        if v.cart and v.orders_wanted > 1:
            return "cart" if page_type == "product" else "checkout"
        if page_type == "checkout" and v.cart:
            return "checkout" if rng.random() < 0.5 else "cart"
        nxt: str = _pick(rng, FLOW.get(page_type, (("home", 100),)))
        if nxt == "register" and v.member_id:
            nxt = "home"
        return nxt

    def view(self, v: _Visitor, s: _Session, t: int, page_type: str) -> bool:
        """One page view and what the visitor does on that page."""
        rng = self.rng
        product: _Product | None = None
        category: str | None = None
        campaign = s.campaign
        if page_type == "product":
            product = self.product()
            page = f"/p/{product.product_id}"
        elif page_type == "category":
            category = rng.choice(CATEGORIES)
            page = f"/c/{category}"
        elif page_type == "campaign":
            campaign = campaign or _pick(rng, CAMPAIGN_WEIGHTS)
            page = f"/campaign/{campaign}"
        elif page_type == "search":
            page = f"/search?q={rng.choice(CATEGORIES)}"
        else:
            page = {
                "home": "/",
                "cart": "/cart",
                "checkout": "/checkout",
                "user_center": "/my",
                "login": "/login",
                "register": "/register",
            }[page_type]
        visit: dict[str, object] = {
            "visitor_id": v.visitor_id,
            "session_id": s.session_id,
            "channel": s.channel,
            "campaign": campaign,
            "device": v.device,
        }
        fields: dict[str, object] = {"page": page, "page_type": page_type}
        if product is not None:
            fields.update(
                product_id=product.product_id, category=product.category, brand=product.brand
            )
        elif category is not None:
            fields["category"] = category  # not a product page: no category_views
        if not self.emit(t, "page_view", **visit, **fields):
            return False
        v.now = t
        at = t + rng.randint(500, 2900)  # actions on the page, before the next view
        if page_type == "login" and v.member_id:
            self.act(v, at, "login", **visit, member_id=v.member_id)
        elif page_type == "register" and not v.member_id and rng.random() < 0.6:
            self.register(v, at, visit)
        elif page_type in ("product", "category", "home", "campaign") and rng.random() < 0.4:
            self.click(v, at, page, page_type, product, visit)
        if product is not None and rng.random() < (0.9 if v.orders_wanted > 1 else 0.22):
            quantity = _pick(rng, ((None, 50), (1, 30), (2, 15), (3, 5)))
            v.cart.append((product, quantity))
            self.act(
                v,
                at + 50,
                "add_to_cart",
                **visit,
                product_id=product.product_id,
                category=product.category,
                brand=product.brand,
                quantity=quantity,
            )
        if page_type == "checkout" and v.cart:
            if not v.member_id and rng.random() < 0.4:
                self.register(v, at, visit)
            self.checkout(v, s, v.now + rng.randint(500, 3000))
        return True

    def act(self, v: _Visitor, ms: int, kind: str, **fields: object) -> bool:
        """An event of the visitor's, kept after their previous one."""
        ms = max(ms, v.now + 1)
        if not self.emit(ms, kind, **fields):
            return False
        v.now = ms
        return True

    def register(self, v: _Visitor, ms: int, visit: dict[str, object]) -> None:
        """The visitor becomes a member (new-member payers count from here)."""
        member = f"m{self.seed}-{v.index:06d}"
        if self.act(v, ms, "registration", **visit, member_id=member):
            v.member_id, v.registered_ms = member, v.now

    def click(
        self,
        v: _Visitor,
        ms: int,
        page: str,
        page_type: str,
        product: _Product | None,
        visit: dict[str, object],
    ) -> None:
        """A click on a product, category, brand or campaign element of the page."""
        rng = self.rng
        target = self.product() if page_type != "product" or rng.random() < 0.7 else product
        assert target is not None
        element = rng.random()
        fields: dict[str, object] = {}
        if page_type == "home" and element < 0.5:
            fields["brand"] = target.brand or "brand-00"
        elif page_type == "home":
            fields["category"] = target.category
        else:
            fields = {
                "product_id": target.product_id,
                "category": target.category,
                "brand": target.brand,
            }
        self.act(v, ms, "click", **visit, page=page, page_type=page_type, **fields)

    def checkout(self, v: _Visitor, s: _Session, ms: int) -> None:
        """Orders from the cart (a would-be repeat buyer splits it), paid or not."""
        rng = self.rng
        lines = list(v.cart)
        v.cart.clear()
        count = v.orders_wanted
        v.orders_wanted = 1
        while len(lines) < count:
            lines.append((self.product(), None))
        groups: list[list[tuple[_Product, int | None]]] = [[] for _ in range(count)]
        for n, line in enumerate(lines):
            if n < count or len(groups[n % count]) < 3:
                groups[n % count].append(line)
        who: dict[str, object] = {"visitor_id": v.visitor_id, "member_id": v.member_id}
        attribution = {"channel": s.channel, "campaign": s.campaign}
        created: list[tuple[str, int, list[Doc]]] = []
        t = ms
        for group in groups:
            self.orders += 1
            order_id = f"o{self.seed}-{self.orders:07d}"
            items: list[Doc] = []
            for product, quantity in group:
                item: Doc = {
                    "product_id": product.product_id,
                    "category": product.category,
                    "brand": product.brand,
                    "quantity": quantity,
                    "amount": _yuan(product.price_cents * (quantity or 1)),
                    "cost": _yuan(product.price_cents * (quantity or 1) * 3 // 5),
                }
                items.append({k: x for k, x in item.items() if x is not None})
            amount = sum(product.price_cents * (quantity or 1) for product, quantity in group)
            t = max(t, v.now) + rng.randint(300, 2000)
            if not self.act(
                v,
                t,
                "order_created",
                **who,
                order_id=order_id,
                **attribution,
                amount=_yuan(amount),
                items=items,
            ):
                return
            created.append((order_id, amount, items))
        pay_share = 1.0 if count > 1 else 0.85
        t = v.now + rng.randint(5000, 60_000)
        registered = (
            _iso(v.registered_ms, self.zone)
            if v.registered_ms is not None and v.sends_registered_at
            else None
        )
        for order_id, amount, items in created:
            order = {**who, "order_id": order_id, **attribution}
            if rng.random() >= pay_share:
                if rng.random() < 0.6:
                    self.emit(t + rng.randint(30_000, 480_000), "order_cancelled", **order)
                continue
            t += rng.randint(500, 5000)
            if not self.act(
                v,
                t,
                "order_paid",
                **order,
                amount=_yuan(amount),
                items=items,
                member_registered_at=registered if v.member_id else None,
            ):
                return
            if rng.random() < 0.15:
                part = amount if rng.random() < 0.6 else round(items[0]["amount"] * 100)
                returned = _pick(rng, ((True, 50), (False, 30), (None, 20)))
                self.emit(
                    t + rng.randint(60_000, 600_000),
                    "order_refunded",
                    **order,
                    amount=_yuan(part),
                    returned=returned,
                )
            if rng.random() < 0.25:
                rating = _pick(rng, ((1, 5), (2, 5), (3, 10), (4, 30), (5, 50)))
                review = {k: x for k, x in order.items() if k not in ("channel", "campaign")}
                self.emit(t + rng.randint(120_000, 1_200_000), "review", **review, rating=rating)

    # --- customer service ----------------------------------------------------------------

    def conversation(self, number: int, customers: list[str]) -> None:
        """A chat: customer messages, bot and agent replies, maybe a complaint, maybe closed."""
        rng = self.rng
        cid = f"c{self.seed}-{number:06d}"
        customer = rng.choice(customers) if customers and rng.random() < 0.9 else None
        agent = rng.choice(AGENTS)
        t = self.arrival()

        def say(ms: int, kind: str, **fields: object) -> bool:
            return self.emit(ms, kind, conversation_id=cid, **fields)

        if rng.random() < 0.03:  # the shop writes first: no customer time yet
            if not say(t, "agent_message", agent_id=agent):
                return
            t += rng.randint(5000, 120_000)
        if not say(t, "customer_message", customer_id=customer):
            return
        if rng.random() < 0.4:
            t += rng.randint(1000, 5000)
            if not say(t, "bot_message"):
                return
        exchanges = rng.randint(1, 4)
        ending = _pick(rng, (("closed", 75), ("open", 10), ("waiting", 10), ("thanks", 5)))
        complaint_at = rng.randrange(exchanges) if rng.random() < 0.12 else -1
        resolved_ms = 0
        if rng.random() < 0.01:  # resolving a complaint opened before the span: not timed
            say(
                t + 500,
                "complaint_resolved",
                complaint_id=f"k{self.seed}-old-{number}",
                satisfied=rng.random() < 0.5,
            )
        for exchange in range(exchanges):
            waiting_since = t
            if rng.random() < 0.3:
                t += rng.randint(2000, 20_000)
                if not say(t, "customer_message", customer_id=customer):
                    return
            if exchange == exchanges - 1 and ending == "waiting":
                return
            delay = (
                rng.randint(2000, 30_000) if rng.random() < 0.7 else rng.randint(30_001, 180_000)
            )
            t = max(t + 1000, waiting_since + delay)
            if rng.random() < 0.1:
                agent = rng.choice([a for a in AGENTS if a != agent])  # handed over
            if not say(t, "agent_message", agent_id=agent):
                return
            if rng.random() < 0.15:
                t += rng.randint(2000, 10_000)
                if not say(t, "agent_message", agent_id=agent):
                    return
            if exchange == complaint_at:
                t += rng.randint(5000, 30_000)
                complaint = f"k{self.seed}-{number}"
                if not say(t, "complaint_opened", complaint_id=complaint):
                    return
                if rng.random() < 0.8:
                    resolved_ms = t + rng.randint(30_000, 300_000)
                    say(
                        resolved_ms,
                        "complaint_resolved",
                        complaint_id=complaint,
                        satisfied=rng.random() < 0.7,
                    )
            if exchange < exchanges - 1 or ending in ("waiting", "thanks"):
                t += rng.randint(5000, 60_000)
                if not say(t, "customer_message", customer_id=customer):
                    return
        if ending in ("closed", "thanks"):
            t = max(t, resolved_ms) + rng.randint(2000, 30_000)
            say(t, "conversation_closed")

    # --- stock ---------------------------------------------------------------------------

    def stock(self) -> None:
        """A stock snapshot per warehouse every 10 minutes (its own random stream)."""
        rng = random.Random(self.seed * 7 + 3)
        boundary = -(-self.start // 600_000) * 600_000
        while boundary < self.end:
            for warehouse in ("wh-east", "wh-west"):
                value = rng.randint(5_000_000, 9_000_000) * 100
                self.emit(
                    boundary, "stock_snapshot", warehouse_id=warehouse, stock_value=_yuan(value)
                )
            boundary += 600_000

    # --- marketing -----------------------------------------------------------------------

    def marketing(self) -> None:
        """Per-minute cost reports per (channel, campaign) in use, and ad-network impressions."""
        rng = self.rng
        boundary = -(-self.start // 60_000) * 60_000
        if boundary == self.start:
            boundary += 60_000
        pairs = sorted(self.pairs.items(), key=lambda item: (item[0][0], item[0][1] or ""))
        while boundary < self.end:
            for (channel, campaign), first_use in pairs:
                if first_use >= boundary:
                    continue
                low, high = {
                    "ads": (5000, 80_000),
                    "search": (2000, 30_000),
                    "social": (1000, 20_000),
                    "direct": (0, 0),
                }.get(channel, (100, 3000))
                self.emit(
                    boundary,
                    "cost_report",
                    channel=channel,
                    campaign=campaign,
                    spend=_yuan(rng.randint(low, high)),
                    impressions=rng.randint(1000, 20_000) if channel == "ads" else None,
                )
                if channel == "ads" and campaign:
                    for _ in range(rng.randint(1, 2)):
                        self.emit(
                            boundary - rng.randint(1, 60_000),
                            "ad_impression",
                            visitor_id=f"adnet-{self.seed}",
                            channel="ads",
                            campaign=campaign,
                            count=rng.randint(1, 50),
                        )
            boundary += 60_000


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(doc: Doc) -> bytes:
    return _ENCODER.encode(doc).encode()


def generate_shop(
    seed: int,
    start_ms: int,
    duration_s: float,
    visitors: int,
    timezone: str = "Asia/Shanghai",
    bad_ratio: float = 0.0,
) -> ShopTraffic:
    """Promotion-night shop traffic in ``[start, start + duration)`` on all four topics.

    The same arguments give the same messages. ``bad_ratio`` adds that share of
    invalid messages (counted in ``truth.rejected``) without changing the valid ones.
    """
    shop = _Shop(seed, start_ms, duration_s, timezone, bad_ratio)
    for index in range(visitors):
        shop.visitor(index)
    customers = [m.member_id for m in shop.members if m.member_id]
    customers += [f"v{seed}-{i:06d}" for i in range(0, visitors, 7)]
    for number in range(max(1, visitors // 10)):
        shop.conversation(number, customers)
    shop.marketing()
    shop.stock()
    return shop.traffic()


def flush_events(
    seed: int,
    at_ms: int,
    partitions: int,
    truth: ShopTruth | None = None,
    timezone: str = "Asia/Shanghai",
) -> list[tuple[int, bytes, bytes]]:
    """One home-page view per partition at ``at_ms``, as (partition, key, value).

    Produced to the clickstream topic after everything else, at least 31 minutes
    after the last event, it makes the service close every earlier session. Pass
    ``truth`` to count these views there too.
    """
    zone = ZoneInfo(timezone)
    flush = []
    for partition in range(partitions):
        visitor = f"flush-{partition}"
        doc: Doc = {
            "schema": 1,
            "type": "page_view",
            "event_id": f"flush-{seed}-{at_ms}-{partition}",
            "event_time": _iso(at_ms, zone),
            "visitor_id": visitor,
            "page": "/",
            "page_type": "home",
            "channel": "direct",
        }
        flush.append((partition, visitor.encode(), _encode(doc)))
    if truth is not None:
        truth.add_flush(flush)
    return flush


STATELESS_TYPES = frozenset(
    {
        "click",
        "add_to_cart",
        "registration",
        "login",
        "ad_impression",
        "order_created",
        "order_paid",
        "order_cancelled",
        "order_refunded",
        "review",
        "cost_report",
        "stock_snapshot",
    }
)
"""Event types whose figures need no visit or conversation: they may come later than
the allowed lateness and still count exactly."""


ORDER_KEYED_TYPES = frozenset({"order_created", "order_paid", "order_cancelled", "order_refunded"})
"""Order events that count once per order id, whatever their event ids."""


def resend_orders(
    messages: list[tuple[bytes, bytes]], seed: int, share: float, truth: ShopTruth
) -> list[tuple[bytes, bytes]]:
    """The orders topic's messages with a ``share`` of its order events sent twice.

    Each copy carries a new event id and everything else of the original (a retried
    payment webhook, a reloaded confirmation page), right after it; the service must
    refuse it (``duplicate_order_event``), which ``truth`` now expects. The same
    arguments give the same messages.
    """
    rng = random.Random(seed)
    out: list[tuple[bytes, bytes]] = []
    for key, value in messages:
        out.append((key, value))
        try:
            doc = json.loads(value)
        except ValueError:
            continue  # an invalid message: never resent
        if str(doc.get("event_id", "")).startswith("bad"):
            continue  # an injected invalid one (see ``_Shop._bad``): never resent
        if doc.get("type") in ORDER_KEYED_TYPES and rng.random() < share:
            out.append((key, _encode({**doc, "event_id": f"{doc['event_id']}-resent"})))
            truth.record_rejected("orders", "duplicate_order_event")
    return out


def disorder(
    messages: list[tuple[bytes, bytes]],
    seed: int,
    late_share: float,
    max_delay_ms: int,
    very_late_share: float = 0.0,
    very_late_delay_ms: int = 0,
) -> list[tuple[bytes, bytes]]:
    """The same messages, delivered out of event-time order; the ground truth is unchanged.

    A ``late_share`` of the valid events is delayed by up to ``max_delay_ms`` (keep it
    within the service's allowed lateness); a ``very_late_share`` of the events that
    join no visit or conversation (:data:`STATELESS_TYPES`) by ``very_late_delay_ms``
    more. Delivery follows event time plus delay; invalid messages keep their place.
    The same arguments give the same order.
    """
    rng = random.Random(seed)
    keyed: list[tuple[float, int, tuple[bytes, bytes]]] = []
    previous = 0.0
    for index, message in enumerate(messages):
        try:
            doc = json.loads(message[1])
            ms = float(ShopTruth._time_ms(doc["event_time"]))
            kind = doc.get("type")
        except (KeyError, TypeError, ValueError, AttributeError):  # JSONDecodeError too
            keyed.append((previous, index, message))  # invalid: where it was
            continue
        previous = ms
        if kind in STATELESS_TYPES and rng.random() < very_late_share:
            ms += very_late_delay_ms + rng.random() * max_delay_ms
        elif rng.random() < late_share:
            ms += rng.random() * max_delay_ms
        keyed.append((ms, index, message))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [message for _, _, message in keyed]
