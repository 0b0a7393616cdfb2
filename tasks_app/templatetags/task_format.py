"""Template filters that format task figures the same way on every page."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def clock_duration(seconds) -> str:
    """Format seconds as `m:ss` or `h:mm:ss`; empty for a missing value."""
    if seconds is None or seconds == "":
        return ""
    total = max(0, round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


@register.filter
def frame_rate(value) -> str:
    """Format a frame rate fraction such as [30000, 1001] as `29.97`."""
    try:
        numerator, denominator = value
        return f"{numerator / denominator:.3f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError, ZeroDivisionError):
        return ""
