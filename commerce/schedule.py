"""Opening hours, breaks, days off, resources and free slots of a service company.

The schedule lives in ``Company.settings["schedule"]`` (JSON, edited by the owner through the admin API)::

    {
      "hours": {"mon": ["09:00-18:00"], "tue": ["09:00-13:00", "14:00-20:00"], "sun": []},
      "breaks": ["13:00-14:00"],            # every day; or per weekday: {"mon": ["13:00-14:00"], "*": [...]}
      "days_off": ["2026-12-25"],           # ISO dates, in the company's timezone
      "slot_step_minutes": 30,              # distance between offered start times (default 30)
      "hold_minutes": 15,                   # how long an unpaid slot is held for the customer (default 15)
      "cancel_hours": 24,                   # a customer's cancellation/move later than this is "late"
      "min_notice_minutes": 0,              # no slot starts sooner than this after "now"
      "horizon_days": 90,                   # no slot further ahead than this
      "prepay_percent": 100,                # default prepayment of a priced service (0 = pay on site)
      "default_duration_minutes": 60        # for services without ``duration_minutes``
    }

Times of day are wall-clock times in the company's IANA timezone (``Company.timezone``); every
computed instant is an aware UTC ``datetime``, so a day on which the clocks change has the right UTC
offsets before and after the change (a start time that does not exist that day is skipped; during
the repeated hour the first occurrence is used). Intervals are ``"HH:MM-HH:MM"`` with minutes a
multiple of ``CELL_MINUTES`` and ``24:00`` allowed as an end. Without a ``schedule`` the company is
open Monday to Friday, 09:00-18:00.

Staff and rooms are ``core.models.Resource`` rows. A service (a ``KnowledgeItem`` of kind
``"service"``) may be limited to some of them by name through ``attributes``: ``{"staff": "Anna"}``
or ``{"resources": ["Anna", "Boris"]}``; otherwise any active resource of the company performs it.
A company without resources gets one default resource (named after the company) on first use.

How double booking is prevented is described in ``commerce.bookings``; this module only reads.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import CommerceError
from core.db import begin_write  # noqa: F401 - re-exported for callers
from core.models import Booking, BookingSlot, Company, KnowledgeItem, Resource
from core.tenancy import TenantScope

PartOfDay = Literal["morning", "afternoon", "evening"]
PARTS_OF_DAY: dict[str, tuple[int, int]] = {
    # minutes after local midnight, [from, to) for the slot's start time
    "morning": (0, 12 * 60),
    "afternoon": (12 * 60, 17 * 60),
    "evening": (17 * 60, 24 * 60),
}
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CELL_MINUTES = 5
"""Granularity of the ``booking_slots`` table: a booking takes every 5-minute cell (aligned to the
UTC epoch) that it overlaps, so bookings of any length and any step collide exactly when they overlap."""

_FULL_WEEKDAYS = {name: name[:3] for name in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                              "sunday")}
DEFAULT_HOURS: dict[str, list[str]] = {d: ["09:00-18:00"] for d in WEEKDAYS[:5]}
_INTERVAL_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Interval = tuple[int, int]  # minutes after local midnight, [start, end)


class ScheduleError(CommerceError, ValueError):
    """The company's schedule settings are malformed; the message names the field."""


@dataclass
class NotBookable(CommerceError):
    """The item is not a service of this company (products are sold through the cart)."""

    item_name: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed company schedule. ``hours``/``breaks`` map weekday (0 = Monday) to intervals in minutes
    after local midnight; ``days_off`` are local dates; durations are minutes; ``prepay_percent`` 0..100."""

    hours: dict[int, tuple[Interval, ...]]
    breaks: dict[int, tuple[Interval, ...]] = field(default_factory=dict)
    days_off: frozenset[date] = frozenset()
    slot_step_minutes: int = 30
    hold_minutes: int = 15
    cancel_hours: int = 24
    min_notice_minutes: int = 0
    horizon_days: int = 90
    prepay_percent: int = 100
    default_duration_minutes: int = 60

    @classmethod
    def from_settings(cls, data: Mapping[str, Any] | None) -> Schedule:
        """Parse the ``Company.settings["schedule"]`` shape (see the module docstring).

        Raises ``ScheduleError`` for unknown weekdays, bad intervals, bad dates or bad numbers."""
        data = dict(data or {})
        hours = _parse_week(data.get("hours", DEFAULT_HOURS), "hours")
        raw_breaks = data.get("breaks") or []
        if isinstance(raw_breaks, Mapping):
            every = _parse_intervals(raw_breaks.get("*", []), "breaks.*")
            per_day = _parse_week({k: v for k, v in raw_breaks.items() if k != "*"}, "breaks")
            breaks = {d: tuple(sorted(every + per_day.get(d, ()))) for d in range(7)}
        else:
            every = _parse_intervals(raw_breaks, "breaks")
            breaks = {d: every for d in range(7)}
        days_off: set[date] = set()
        for raw in data.get("days_off") or []:
            try:
                days_off.add(date.fromisoformat(str(raw)))
            except ValueError as exc:
                raise ScheduleError(f"days_off: {raw!r} is not an ISO date (YYYY-MM-DD)") from exc

        def number(key: str, default: int, low: int, high: int, multiple: int = 1) -> int:
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or value % multiple:
                extra = f" and a multiple of {multiple}" if multiple > 1 else ""
                raise ScheduleError(f"{key} must be an integer {low}..{high}{extra}, not {value!r}")
            return value

        return cls(
            hours=hours,
            breaks=breaks,
            days_off=frozenset(days_off),
            slot_step_minutes=number("slot_step_minutes", 30, CELL_MINUTES, 24 * 60, CELL_MINUTES),
            hold_minutes=number("hold_minutes", 15, 1, 7 * 24 * 60),
            cancel_hours=number("cancel_hours", 24, 0, 24 * 365),
            min_notice_minutes=number("min_notice_minutes", 0, 0, 365 * 24 * 60),
            horizon_days=number("horizon_days", 90, 1, 3 * 365),
            prepay_percent=number("prepay_percent", 100, 0, 100),
            default_duration_minutes=number("default_duration_minutes", 60, CELL_MINUTES, 24 * 60, CELL_MINUTES),
        )

    def to_settings(self) -> dict[str, Any]:
        """The JSON shape stored in ``Company.settings["schedule"]`` (inverse of ``from_settings``)."""
        every = set(self.breaks.get(0, ()))
        for d in range(7):
            every &= set(self.breaks.get(d, ()))
        breaks: dict[str, list[str]] = {"*": [_fmt_interval(iv) for iv in sorted(every)]}
        for d in range(7):
            extra = [iv for iv in self.breaks.get(d, ()) if iv not in every]
            if extra:
                breaks[WEEKDAYS[d]] = [_fmt_interval(iv) for iv in extra]
        return {
            "hours": {WEEKDAYS[d]: [_fmt_interval(iv) for iv in self.hours.get(d, ())] for d in range(7)},
            "breaks": breaks,
            "days_off": sorted(d.isoformat() for d in self.days_off),
            "slot_step_minutes": self.slot_step_minutes,
            "hold_minutes": self.hold_minutes,
            "cancel_hours": self.cancel_hours,
            "min_notice_minutes": self.min_notice_minutes,
            "horizon_days": self.horizon_days,
            "prepay_percent": self.prepay_percent,
            "default_duration_minutes": self.default_duration_minutes,
        }


def _fmt_interval(iv: Interval) -> str:
    return f"{iv[0] // 60:02d}:{iv[0] % 60:02d}-{iv[1] // 60:02d}:{iv[1] % 60:02d}"


def _parse_intervals(raw: Any, where: str) -> tuple[Interval, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, Sequence):
        raise ScheduleError(f"{where}: expected a list of 'HH:MM-HH:MM', not {raw!r}")
    out: list[Interval] = []
    for item in raw:
        m = _INTERVAL_RE.match(str(item))
        if not m:
            raise ScheduleError(f"{where}: {item!r} is not 'HH:MM-HH:MM'")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * 60:
            raise ScheduleError(f"{where}: {item!r} is not a valid interval within one day")
        if start % CELL_MINUTES or end % CELL_MINUTES:
            raise ScheduleError(f"{where}: {item!r} must use minutes that are a multiple of {CELL_MINUTES}")
        out.append((start, end))
    return tuple(sorted(out))


def _parse_week(raw: Any, where: str) -> dict[int, tuple[Interval, ...]]:
    if not isinstance(raw, Mapping):
        raise ScheduleError(f"{where}: expected a mapping of weekday (mon..sun) to intervals")
    out: dict[int, tuple[Interval, ...]] = {}
    for key, value in raw.items():
        day = str(key).strip().lower()
        day = _FULL_WEEKDAYS.get(day, day)
        if day not in WEEKDAYS:
            raise ScheduleError(f"{where}: unknown weekday {key!r} (use mon, tue, wed, thu, fri, sat, sun)")
        out[WEEKDAYS.index(day)] = _parse_intervals(value or [], f"{where}.{day}")
    return out


def schedule_of(company: Company) -> Schedule:
    """The company's parsed schedule (defaults when none is set). Raises ``ScheduleError``."""
    return Schedule.from_settings((company.settings or {}).get("schedule"))


def company_zone(company: Company) -> ZoneInfo:
    """The company's ``ZoneInfo`` (``Company.timezone``; UTC when empty)."""
    return ZoneInfo(company.timezone or "UTC")


async def set_schedule(session: AsyncSession, *, company: Company, schedule: Schedule | Mapping[str, Any]) -> Schedule:
    """Validate and store a schedule in ``Company.settings["schedule"]`` and make sure the company has
    at least one resource. Accepts a ``Schedule`` or the JSON shape. Raises ``ScheduleError``."""
    parsed = schedule if isinstance(schedule, Schedule) else Schedule.from_settings(schedule)
    company.settings = {**(company.settings or {}), "schedule": parsed.to_settings()}
    await session.flush()
    await ensure_default_resource(session, company=company)
    return parsed



async def company_resources(session: AsyncSession, *, company: Company, active_only: bool = True) -> list[Resource]:
    """The company's resources ordered by ``position`` then name."""
    stmt = TenantScope(company.tenant_id).select(Resource, Resource.company_id == company.id)
    if active_only:
        stmt = stmt.where(Resource.active.is_(True))
    return list((await session.execute(stmt.order_by(Resource.position, Resource.name))).scalars())


async def ensure_default_resource(session: AsyncSession, *, company: Company) -> Resource | None:
    """Create the company's default resource (named after the company, capacity 1) when it has no
    resource at all; returns it, or ``None`` when the company already had resources. Safe against two
    transactions doing it at once (unique name per company; the loser reads the winner's row)."""
    scope = TenantScope(company.tenant_id)
    exists = select(Resource.id).where(Resource.tenant_id == company.tenant_id, Resource.company_id == company.id)
    if (await session.execute(exists.limit(1))).first():
        return None
    await begin_write(session)
    name = (company.name or company.slug)[:200]
    try:
        async with session.begin_nested():
            resource = Resource(tenant_id=company.tenant_id, company_id=company.id, name=name, capacity=1,
                                hours=None, days_off=[], active=True, position=0)
            session.add(resource)
            await session.flush()
        return resource
    except IntegrityError:
        return (await session.execute(scope.select(Resource, Resource.company_id == company.id,
                                                   Resource.name == name))).scalar_one()


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split(",")  # an owner's sheet names several people as "Sofia, Jack"
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


async def eligible_resources(session: AsyncSession, *, company: Company, service: KnowledgeItem) -> list[Resource]:
    """Active resources that perform ``service``: those named in ``service.attributes["resources"]`` /
    ``["staff"]`` (case-insensitive), or all active resources when it names none. Creates the default
    resource when the company has none (flushes)."""
    resources = await company_resources(session, company=company)
    if not resources:
        await ensure_default_resource(session, company=company)
        resources = await company_resources(session, company=company)
    attrs = service.attributes or {}
    wanted = {n.strip().casefold() for n in _names(attrs.get("resources")) + _names(attrs.get("staff")) if n.strip()}
    if not wanted:
        return resources
    return [r for r in resources if r.name.strip().casefold() in wanted]


def service_duration(service: KnowledgeItem, schedule: Schedule) -> int:
    """Duration of ``service`` in minutes, rounded up to ``CELL_MINUTES`` (the schedule's default when unset)."""
    minutes = service.duration_minutes or schedule.default_duration_minutes
    if minutes <= 0:
        minutes = schedule.default_duration_minutes
    return -(-minutes // CELL_MINUTES) * CELL_MINUTES


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable time: ``start``/``end`` are aware UTC; ``resource_id``/``resource_name`` say who performs it."""

    start: datetime
    end: datetime
    resource_id: uuid.UUID
    resource_name: str

    def local_start(self, tz: ZoneInfo) -> datetime:
        """The start in the company's timezone (for showing to the customer)."""
        return self.start.astimezone(tz)


def _subtract(intervals: Iterable[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    out = list(intervals)
    for c0, c1 in cuts:
        nxt: list[Interval] = []
        for a, b in out:
            if c1 <= a or c0 >= b:
                nxt.append((a, b))
                continue
            if a < c0:
                nxt.append((a, c0))
            if c1 < b:
                nxt.append((c1, b))
        out = nxt
    return out


def _aware(day: date, minute: int, tz: ZoneInfo) -> datetime | None:
    """Local wall-clock ``day`` + ``minute`` as aware UTC, or ``None`` when that local time does not
    exist (skipped by a DST change). ``minute`` may be 1440 (the next midnight)."""
    naive = datetime.combine(day, time(0)) + timedelta(minutes=minute)
    local = naive.replace(tzinfo=tz)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return as_utc


def _parse_days_off(values: Iterable[Any]) -> set[date]:
    out: set[date] = set()
    for v in values or []:
        try:
            out.add(date.fromisoformat(str(v)))
        except ValueError:
            continue
    return out


def resource_intervals(schedule: Schedule, resource: Resource, day: date) -> list[Interval]:
    """Working intervals of ``resource`` on local ``day``: its own ``hours`` (else the company's) minus
    the company's breaks; empty on a company or resource day off. Raises ``ScheduleError`` for bad
    ``Resource.hours``."""
    if day in schedule.days_off or day in _parse_days_off(resource.days_off or []):
        return []
    hours = _parse_week(resource.hours, f"resource {resource.name!r} hours") if resource.hours else schedule.hours
    return _subtract(hours.get(day.weekday(), ()), schedule.breaks.get(day.weekday(), ()))


def candidate_slots(
    *,
    schedule: Schedule,
    tz: ZoneInfo,
    resources: Sequence[Resource],
    day: date,
    duration_minutes: int,
    now: datetime,
    part_of_day: PartOfDay | None = None,
    after: time | None = None,
) -> list[Slot]:
    """Start times on local ``day`` allowed by the schedule alone (hours, breaks, days off, step, notice,
    horizon, part of day, ``after`` as a local time), ignoring existing bookings. Starts step from the
    start of each working interval; a slot must end within its interval. Sorted by start, then resource."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(tz).date()
    if day < today or day > today + timedelta(days=schedule.horizon_days):
        return []
    earliest = now + timedelta(minutes=schedule.min_notice_minutes)
    lo, hi = PARTS_OF_DAY[part_of_day] if part_of_day else (0, 24 * 60)
    if after is not None:
        lo = max(lo, after.hour * 60 + after.minute + (1 if after.second or after.microsecond else 0))
    step = schedule.slot_step_minutes
    out: list[Slot] = []
    for resource in resources:
        for a, b in resource_intervals(schedule, resource, day):
            # The interval's end as an instant; a local time inside a DST gap maps past the gap (fold=0).
            close = (datetime.combine(day, time(0)) + timedelta(minutes=b)).replace(tzinfo=tz).astimezone(UTC)
            minute = a
            while minute < b:
                start, local_minute = _aware(day, minute, tz), minute
                minute += step
                if start is None or not lo <= local_minute < hi:
                    continue
                end = start + timedelta(minutes=duration_minutes)
                if end > close or start < earliest:
                    continue
                out.append(Slot(start=start, end=end, resource_id=resource.id, resource_name=resource.name))
    out.sort(key=lambda s: (s.start, s.resource_name))
    return out


def cells(start: datetime, end: datetime) -> list[datetime]:
    """The ``CELL_MINUTES`` cells (aware UTC cell starts, aligned to the epoch) overlapped by [start, end)."""
    step = CELL_MINUTES * 60
    first = int(start.timestamp()) // step * step
    out: list[datetime] = []
    t = first
    stop = end.timestamp()
    while t < stop:
        out.append(datetime.fromtimestamp(t, UTC))
        t += step
    return out


def active_booking_clause(now: datetime) -> Any:
    """SQL condition for a booking that occupies its time: confirmed, or held with an unexpired hold."""
    return or_(Booking.status == "confirmed", and_(Booking.status == "held", Booking.hold_expires_at > now))


async def occupancy(
    session: AsyncSession,
    *,
    resource_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
    now: datetime,
    ignore_booking_id: uuid.UUID | None = None,
) -> dict[tuple[uuid.UUID, datetime], int]:
    """How many active bookings take each (resource, cell) in [start, end)."""
    if not resource_ids:
        return {}
    stmt = (
        select(BookingSlot.resource_id, BookingSlot.slot_start, func.count())
        .join(Booking, Booking.id == BookingSlot.booking_id)
        .where(BookingSlot.resource_id.in_(list(resource_ids)), BookingSlot.slot_start >= start,
               BookingSlot.slot_start < end, active_booking_clause(now))
        .group_by(BookingSlot.resource_id, BookingSlot.slot_start)
    )
    if ignore_booking_id is not None:
        stmt = stmt.where(Booking.id != ignore_booking_id)
    return {(rid, ts): n for rid, ts, n in (await session.execute(stmt)).all()}


def is_free(slot: Slot, taken: Mapping[tuple[uuid.UUID, datetime], int], capacity: int) -> bool:
    """Whether every cell of ``slot`` has fewer than ``capacity`` active bookings."""
    return all(taken.get((slot.resource_id, c), 0) < capacity for c in cells(slot.start, slot.end))


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Aware UTC instants of local midnight at the start of ``day`` and of the next day."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def check_service(company: Company, service: KnowledgeItem) -> None:
    """Raise ``NotBookable`` unless ``service`` is a ``"service"`` item of ``company``."""
    if service.company_id != company.id or service.tenant_id != company.tenant_id or service.kind != "service":
        raise NotBookable(service.name)


async def free_slots(
    session: AsyncSession,
    *,
    company: Company,
    service: KnowledgeItem,
    day: date,
    part_of_day: PartOfDay | None = None,
    after: time | None = None,
    now: datetime,
    resource: Resource | uuid.UUID | None = None,
    ignore_booking_id: uuid.UUID | None = None,
) -> list[Slot]:
    """Free start times of ``service`` on local ``day`` (company timezone), earliest first.

    Excludes times before ``now`` (+ ``min_notice_minutes``), outside opening hours, in breaks, on days
    off, and times whose cells are taken by held (unexpired) or confirmed bookings up to each resource's
    ``capacity``. ``part_of_day`` keeps starts in the morning (<12:00), afternoon (12:00-17:00) or
    evening (>=17:00); ``after`` keeps starts at or after that local time. ``resource`` limits to one
    resource; ``ignore_booking_id`` treats that booking's own time as free (for moving it). One ``Slot``
    per (start, resource); may create the default resource (flushes). Raises ``NotBookable`` and
    ``ScheduleError``.
    """
    check_service(company, service)
    schedule = schedule_of(company)
    tz = company_zone(company)
    resources = await eligible_resources(session, company=company, service=service)
    if resource is not None:
        rid = resource if isinstance(resource, uuid.UUID) else resource.id
        resources = [r for r in resources if r.id == rid]
    duration = service_duration(service, schedule)
    slots = candidate_slots(schedule=schedule, tz=tz, resources=resources, day=day, duration_minutes=duration,
                            now=now, part_of_day=part_of_day, after=after)
    if not slots:
        return []
    taken = await occupancy(session, resource_ids=[r.id for r in resources], start=slots[0].start - timedelta(
        minutes=CELL_MINUTES), end=max(s.end for s in slots), now=now, ignore_booking_id=ignore_booking_id)
    capacity = {r.id: max(r.capacity, 1) for r in resources}
    return [s for s in slots if is_free(s, taken, capacity[s.resource_id])]


async def free_days(
    session: AsyncSession,
    *,
    company: Company,
    service: KnowledgeItem,
    start_day: date,
    now: datetime,
    days: int = 14,
    limit: int = 3,
    part_of_day: PartOfDay | None = None,
) -> list[date]:
    """Up to ``limit`` local dates from ``start_day`` (looking ``days`` ahead) that have a free slot
    (for "nothing on Friday; the nearest days are ..."). Raises like ``free_slots``."""
    out: list[date] = []
    for i in range(days):
        d = start_day + timedelta(days=i)
        if await free_slots(session, company=company, service=service, day=d, part_of_day=part_of_day, now=now):
            out.append(d)
            if len(out) >= limit:
                break
    return out
