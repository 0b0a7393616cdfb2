"""`{% upload_form_config %}`: limits, time rates and messages the upload form's script needs, as JSON."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.html import json_script
from django.utils.translation import gettext

from tasks_app.estimates import ASSUMED_FRAMES_PER_SECOND, SECONDS_PER_OUTPUT_MEGAPIXEL

register = template.Library()


@register.simple_tag
def upload_form_config() -> str:
    """Render a <script type="application/json" id="upload-config"> element for static/js/site.js."""
    config = {
        "maxOutputPixels": settings.FLASHVSR_MAX_OUTPUT_PIXELS,
        "maxSourcePixels": settings.FLASHVSR_MAX_SOURCE_PIXELS,
        "maxUploadBytes": settings.FLASHVSR_MAX_UPLOAD_BYTES,
        "secondsPerOutputMegapixel": SECONDS_PER_OUTPUT_MEGAPIXEL,
        "assumedFramesPerSecond": ASSUMED_FRAMES_PER_SECOND,
        "messages": _messages(),
    }
    return json_script(config, "upload-config")


def _messages() -> dict:
    # Placeholders in braces are filled in by the script.
    return {
        "output": gettext("Output: {width}×{height} ({megapixels} megapixels per frame)"),
        "tooLarge": gettext(
            "The output would be {width}×{height}, over the limit of {limit} megapixels per frame. "
            "Choose scale {scale}× or smaller."
        ),
        "tooLargeNoScale": gettext(
            "The output would be {width}×{height}, over the limit of {limit} megapixels per frame "
            "even at 2×. Scale the video down before uploading."
        ),
        "sourceTooLarge": gettext(
            "The video is {width}×{height}, over the limit of {limit} megapixels per frame. "
            "Scale it down before uploading."
        ),
        "fileTooLarge": gettext(
            "The file is {size}, over the upload limit of {limit}. Upload a smaller file."
        ),
        "estimate": gettext(
            "Estimated processing time: about {duration} (an estimate for {frames} frames at an assumed "
            "{fps} frames/s; the real time depends on the GPU)."
        ),
        "unreadable": gettext(
            "This browser cannot read the video's size. The server checks the file after the upload."
        ),
        "uploading": gettext("Uploading: {percent}%"),
        "statusChanged": gettext("{name}: {status}"),
        "chosenFile": gettext("Chosen file: {name} ({size})"),
        "seconds": gettext("{seconds} s"),
        "minutes": gettext("{minutes} min"),
        "hours": gettext("{hours} h {minutes} min"),
    }
