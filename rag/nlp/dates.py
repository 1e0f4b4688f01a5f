"""Dates in reports: every date a text mentions, and the one it was published on.

Only unambiguous forms count: ISO (``2024-03-12``, ``2024/03/12``) and dates
with a month name (``12 March 2024``, ``March 12, 2024``, ``Nov 25``,
``March 2024``). Numeric day/month forms such as ``12/03/2024`` are skipped on
purpose: they read differently in London and New York. A publication date is
never invented: when the report carries none, the note says so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

NO_DATE = "no publication date found"
TOP_CHARS = 500  # "near the top": where a report states its own date

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MON = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|2[01]\d\d)"
# Alternatives are tried left to right at each position: full dates before partial ones.
_DATE_RE = re.compile(
    rf"(?<![\w/-])(?P<iy>{_YEAR})(?P<sep>[-/])(?P<im>0?[1-9]|1[0-2])(?P=sep)(?P<id>0?[1-9]|[12]\d|3[01])(?![\d/])"
    rf"|\b(?P<ad>{_DAY})\s+(?:of\s+)?(?P<am>{_MON})\b\.?,?\s+(?P<ay>{_YEAR})\b"
    rf"|\b(?P<bm>{_MON})\b\.?\s+(?P<bd>{_DAY}),?\s+(?P<by>{_YEAR})\b"
    rf"|\b(?P<cm>{_MON})\b\.?,?\s+(?P<cy>{_YEAR})\b"
    rf"|\b(?P<dm>{_MON})\b\.?\s+(?P<dd>{_DAY})\b(?!\s*[:.]\d)"
    rf"|\b(?P<ed>{_DAY})\s+(?:of\s+)?(?P<em>{_MON})\b",
    re.IGNORECASE,
)
_LABEL_RE = re.compile(
    r"(?im)^[^\S\n]*(?P<label>published|posted|issued|released|dated|date|updated|last updated)"
    r"(?:[^\S\n]+on)?[^\S\n]*[:\-\u2013\u2014]?[^\S\n]*"
)
_PLACE_RE = re.compile(r"(?m)^[^\S\n]*[A-Z][A-Za-z.'\u2019 /-]{1,40},[^\S\n]*")
_AFTER_DATELINE = re.compile(r"[^\S\n]*(?:\([^)\n]{1,40}\))?[^\S\n]*[-\u2013\u2014:]")

# HTML meta names that carry a publication date, most trustworthy first.
META_KEYS = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "json-ld datePublished",
    "date",
    "pubdate",
    "publishdate",
    "publish-date",
    "dc.date",
    "dc.date.issued",
    "dcterms.date",
    "dcterms.issued",
    "sailthru.date",
    "parsely-pub-date",
    "time",
)


def _month(name: str) -> int | None:
    if not name[0].isupper():  # "may" and "march" are also verbs
        return None
    return _MONTHS.get(name[:3].lower())


def _day(token: str) -> int:
    return int(re.match(r"\d+", token).group())  # type: ignore[union-attr]


def _full(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def _value(m: re.Match[str]) -> str | None:
    """ISO date (``YYYY-MM-DD``), month (``YYYY-MM``) or month-day (``--MM-DD``) of a match."""
    g = m.groupdict()
    if g["iy"]:
        return _full(int(g["iy"]), int(g["im"]), int(g["id"]))
    for p in "ab":
        if g[p + "m"]:
            month = _month(g[p + "m"])
            return _full(int(g[p + "y"]), month, _day(g[p + "d"])) if month else None
    if g["cm"]:
        month = _month(g["cm"])
        return f"{int(g['cy']):04d}-{month:02d}" if month else None
    for p in "de":
        if g[p + "m"]:
            month = _month(g[p + "m"])
            if month and _full(2000, month, _day(g[p + "d"])):  # 2000 is a leap year: Feb 29 passes
                return f"--{month:02d}-{_day(g[p + 'd']):02d}"
    return None


def find_dates(text: str) -> list[tuple[int, int, str, str]]:
    """Every date in ``text`` as ``(start, end, iso_or_partial, surface)``, in order.

    ``iso_or_partial`` is ``YYYY-MM-DD``, ``YYYY-MM`` (a month) or ``--MM-DD``
    (a day without a year); ``text[start:end] == surface``.
    """
    out = []
    for m in _DATE_RE.finditer(text):
        value = _value(m)
        if value:
            out.append((m.start(), m.end(), value, m.group()))
    return out


def is_full(value: str | None) -> bool:
    """True for a complete ISO date ``YYYY-MM-DD``."""
    return bool(value) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value or "") is not None


def parse_date_value(value: str) -> str | None:
    """ISO date from a machine-written value such as ``2024-03-12T10:00:00Z`` or ``12 March 2024``."""
    value = value.strip()
    m = re.match(r"(\d{4})-?(\d{2})-?(\d{2})(?!\d)", value)
    if m:
        return _full(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    full = [d for d in find_dates(value[:100]) if is_full(d[2])]
    return full[0][2] if full else None


def publication_date(text: str, meta: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The report's publication date and a note saying where it was found (or that none was).

    Looks, in order, at HTML meta values (keys lower-cased, see ``META_KEYS``), a
    dateline ("MOSCOW, Nov 25 (Reuters) -", "Published: 12 March 2024") and a full
    date in the first ``TOP_CHARS`` characters.
    """
    for key in META_KEYS:
        raw = (meta or {}).get(key.lower())
        iso = parse_date_value(raw) if raw else None
        if iso:
            where = "HTML <time datetime>" if key == "time" else f"HTML meta {key}"
            return iso, where.replace("meta json-ld", "JSON-LD")
    iso, yearless = _dateline(text)
    if iso:
        return iso, "dateline"
    for _start, _end, value, _surface in find_dates(text[:TOP_CHARS]):
        if is_full(value):
            return value, "date near the top"
    if yearless:
        return None, f"{NO_DATE} (the dateline '{yearless}' has no year)"
    return None, NO_DATE


def _dateline(text: str) -> tuple[str | None, str | None]:
    """(ISO date, yearless dateline date) from a dateline or a "Published:" line near the top."""
    top = text[: TOP_CHARS * 2]
    found = find_dates(top)
    dates = {start: (value, surface) for start, _e, value, surface in found}
    ends = {start: end for start, end, _v, _s in found}
    yearless = None
    for m in _PLACE_RE.finditer(top):
        hit = dates.get(m.end())
        if hit and _AFTER_DATELINE.match(top, ends[m.end()]):
            if is_full(hit[0]):
                return hit[0], None
            yearless = yearless or hit[1]
    updated = None
    for m in _LABEL_RE.finditer(top):
        hit = dates.get(m.end())
        if hit and is_full(hit[0]):
            if "updated" not in m.group("label").lower():
                return hit[0], None
            updated = updated or hit[0]
    return updated, yearless


def date_ord(date: str | None) -> int | None:
    """YYYY-MM-DD (or YYYY-MM, YYYY) as an int YYYYMMDD for range filters."""
    if not date:
        return None
    parts = (date.split("-") + ["01", "01"])[:3]
    try:
        return int(parts[0]) * 10000 + int(parts[1] or 1) * 100 + int(parts[2] or 1)
    except ValueError:
        return None


def sort_key(date: str) -> str:
    """Sort key of an ISO, month or --MM-DD date (a date without a year sorts after dated ones)."""
    return "9999" + date[1:] if date.startswith("--") else date
