"""Template filters for the task page's preview and comparison images."""

from __future__ import annotations

from django import template

from tasks_app import comparison
from tasks_app.localized import localize

register = template.Library()


@register.filter
def comparison_frame_number(task) -> int:
    """Return the 1-based number of the frame the before/after comparison shows."""
    frames = task.total_frames or (task.source_metadata or {}).get("frame_count") or 0
    return comparison.frame_index(frames) + 1


@register.filter
def localized_message(message: str) -> str:
    """Translate an English message stored by the worker or the gpu package into the active language."""
    return localize(message)
