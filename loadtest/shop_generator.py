"""Seeded promotion-night shop traffic on all four topics, recorded in its ground truth.

:func:`generate_shop` plays visitors (sessions of page views, clicks, carts, orders,
payments, refunds, reviews, registrations, logins, ad impressions), customer-service
conversations and per-minute cost reports, and returns the raw messages per topic
kind together with the :class:`~loadtest.shop_truth.ShopTruth` every valid message
was recorded in (the truth computes the expected KPIs; this module only plays the
shop).

:func:`flush_events` gives one late page view per partition: produced last, it moves
every partition's event time on by more than the session timeout, so the service
closes every earlier session and the truth's closed-session figures apply.
:func:`disorder` and :func:`resend_orders` change the delivery (late events,
retried order events) of generated messages.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from loadtest.generator import CHANNEL_WEIGHTS, promotion_shape
from loadtest.shop_truth import KEY_OF, SESSION_TIMEOUT_MS, TOPIC_KINDS, TOPIC_OF, ShopTruth

Doc = dict[str, Any]
"""A JSON event document as produced."""

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
        self,
        seed: int,
        start_ms: int,
        duration_s: float,
        timezone: str,
        bad_ratio: float,
        overrun_s: float = 0.0,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.bad_rng = random.Random(seed * 7919 + 1)  # bad messages never shift good traffic
        self.bad_ratio = bad_ratio
        self.start = start_ms
        self.end = start_ms + int(duration_s * 1000)
        self.last = self.end + int(overrun_s * 1000)
        """Events of what began in the span may go on until here (live rounds: a visit or
        conversation started near a round's end is not cut off)."""
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
        """Send one valid event at ``ms``; False (nothing sent) outside the span and overrun."""
        if not self.start <= ms < self.last:
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
        key = str(next(doc[k] for k in KEY_OF[kind].split("|") if doc.get(k))).encode()
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
            del broken[KEY_OF[doc["type"]].split("|")[-1]]
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
        if rng.random() < 0.003:
            # a few buyers split a basket into several orders (a paying buyer places
            # about 1.2 paid orders on average: tests/unit/test_shop_generator.py)
            visitor.orders_wanted = rng.randint(2, 4)
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
                if rng.random() < 0.95:
                    # nobody answers: the customer gives up, and the chat system closes the
                    # conversation after its inactivity limit (abandonment, 1 to 10 minutes)
                    say(t + rng.randint(60_000, 600_000), "conversation_closed")
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
        else:  # left open: the chat system closes it after 10 to 30 idle minutes
            say(max(t, resolved_ms) + rng.randint(600_000, 1_800_000), "conversation_closed")

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
    conversations: int | None = None,
    overrun_s: float = 0.0,
) -> ShopTraffic:
    """Promotion-night shop traffic in ``[start, start + duration)`` on all four topics.

    The same arguments give the same messages. ``bad_ratio`` adds that share of
    invalid messages (counted in ``truth.rejected``) without changing the valid ones.
    ``conversations``: customer-service chats begun in the span (default: one per ten
    visitors, many to exercise the figures; a live demo sizes them to its agents).
    ``overrun_s``: how long after the span the visits and chats begun in it may go on.
    """
    shop = _Shop(seed, start_ms, duration_s, timezone, bad_ratio, overrun_s)
    for index in range(visitors):
        shop.visitor(index)
    customers = [m.member_id for m in shop.members if m.member_id]
    customers += [f"v{seed}-{i:06d}" for i in range(0, visitors, 7)]
    for number in range(max(1, visitors // 10) if conversations is None else conversations):
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
