"""`{% status_panel %}`: render the system status panel for the logged-in user on any page."""

from __future__ import annotations

from django import template

from tasks_app.status import collect_status

register = template.Library()


@register.inclusion_tag("tasks_app/partials/status_panel.html", takes_context=True)
def status_panel(context) -> dict:
    return {"status": collect_status(context["request"].user)}
