"""Numbers and names for people, one format each on every screen: rates as %, differences as pp, times in
ms, parameters in M, thousands separated, p through core.decide.stats.show_p, times local and to the
minute; model specs as names (HRM-27M, GPT-2-117M) with the spec kept for hover text.

A table column that must stay sortable holds numbers, not these strings: rates as 100 x shown with
PCT_COLUMN, times as datetimes shown with TIME_COLUMN, which read as pct() and local_time() do."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.decide.stats import show_p

# spec (or spec without its prefix) -> name for people
NAMES = {"hrm:27m": "HRM-27M", "hrm:tiny": "HRM-tiny", "hf:gpt2": "GPT-2-117M", "hf-arch:gpt2": "GPT-2-117M (untrained architecture)",
         "gpt2": "GPT-2-117M", "hf:Salesforce/codet5-small": "CodeT5-small", "oracle": "Oracle (reference solutions)"}
# names that imported samples files carry (core.views.quickstart)
SAMPLE_NAMES = {"chatgpt-mapcoder": "ChatGPT + MapCoder", "chatgpt-reflexion": "ChatGPT + Reflexion",
                "chatgpt-analogical": "ChatGPT + Analogical"}


PCT_DIGITS = 1
PCT_COLUMN = f"%.{PCT_DIGITS}f%%"  # printf, for a number column holding 100 x
TIME_COLUMN = "YYYY-MM-DD HH:mm"  # moment.js, for a datetime column


def pct(x: float | None, digits: int = PCT_DIGITS) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def local_time(iso: str | None, tz: str | None = None) -> datetime | None:
    """An ISO timestamp as a datetime in the viewer's time zone (an IANA name, e.g. the browser's), else in
    this machine's; None where there is none or it does not parse."""
    if not iso:
        return None
    try:
        t = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    try:
        zone = ZoneInfo(tz) if tz else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return t.astimezone(zone)


def pp(x: float | None, digits: int = 1) -> str:
    """A difference of two rates (fractions) in percentage points, signed."""
    return "–" if x is None else f"{100 * x:+.{digits}f} pp"


def when(iso: str | None, tz: str | None = None) -> str:
    """A timestamp for people: local (see local_time) and to the minute, as TIME_COLUMN shows one."""
    t = local_time(iso, tz)
    return "–" if t is None else t.strftime("%Y-%m-%d %H:%M")


def ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f} ms"


def mparams(n: float | None) -> str:
    return "–" if n is None else f"{n / 1e6:,.1f}M"


def duration(seconds: float) -> str:
    """A rough length of time for people: "about 40 seconds", "about 42 minutes", "about 3.5 hours"."""
    if seconds < 90:
        return f"about {max(round(seconds), 1)} seconds"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} minutes"
    return f"about {seconds / 3600:.1f} hours"


def thousands(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def p_value(p: float | None, resamples: int | None = None, method: str = "") -> str:
    return show_p(p, resamples, method)


def is_gpt2(spec: str | None) -> bool:
    kind, _, arg = str(spec or "").partition(":")
    return kind in ("hf", "hf-arch") and Path(arg).name.lower() in ("gpt2", "gpt2-small", "openai-community/gpt2")


def model_name(spec: str | None) -> str:
    """HRM-27M, GPT-2-117M...; an imported samples file by its name; a path by its last part (never whole)."""
    if not spec:
        return "?"
    if spec in NAMES:
        return NAMES[spec]
    kind, _, arg = spec.partition(":")
    if kind == "samples":
        stem = Path(arg).name.removesuffix(".jsonl")
        return SAMPLE_NAMES.get(stem, stem)
    if is_gpt2(spec):
        return "GPT-2-117M" + (" (untrained architecture)" if kind == "hf-arch" else "")
    if kind == "hrm":
        return f"HRM ({Path(arg).name})"
    if kind in ("hf", "hf-arch", "openai"):
        return Path(arg.split("#")[-1]).name or arg
    return spec
