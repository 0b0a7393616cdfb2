"""Show English messages from the gpu package and the worker in the language of the request.

The gpu package has no Django and so no gettext, and the worker runs without a request, so both store their
messages (task errors, notes, upload rejections) in English. Each message shape is listed below with
`gettext_noop`, so makemessages puts it in the catalogue. A `%(name)s` placeholder matches any text, and the
captured text goes into the translated message unchanged.
"""

from __future__ import annotations

import re
from functools import cache

from django.utils.translation import gettext, gettext_noop

PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdfg]")

# NOTE: a gpu message missing from this list (a new one, or one whose wording changed) is shown in English.
STORED_MESSAGES = (
    # gpu.video.probe: upload rejections and notes
    gettext_noop("The file could not be read. Upload it again."),
    gettext_noop("The file is empty (0 bytes). Upload the video file again."),
    gettext_noop(
        "The file is %(size)s MiB, over the limit of %(limit)s MiB. "
        "Upload a shorter or more compressed video."
    ),
    gettext_noop(
        "The file is not a video file that can be read (its content matches no known media format). "
        "Upload a video file such as MP4, MKV, MOV or WebM."
    ),
    gettext_noop("The file contains no video stream (%(kinds)s). Upload a file that contains video."),
    gettext_noop("audio only"),
    gettext_noop("no video"),
    gettext_noop("The file has %(count)s video streams; only stream %(index)s is upscaled."),
    gettext_noop(
        "The video stream could not be decoded (%(codec)s). The file may be damaged, encrypted (DRM) or use "
        "a codec this server does not support. Convert it to H.264 MP4 and upload it again."
    ),
    gettext_noop(
        "The video ends before its first complete frame: the file is cut off or damaged. "
        "Upload the complete file again."
    ),
    gettext_noop("The video has an alpha (transparency) channel; the output is opaque."),
    gettext_noop("The video is interlaced; it is deinterlaced to one frame per frame."),
    gettext_noop(
        "The video is %(duration)s s long, over the limit of %(limit)s s. "
        "Cut it into shorter parts and upload them one by one."
    ),
    gettext_noop(
        "The video is %(size)s (%(pixels)s pixels), over the limit of %(limit)s source pixels. "
        "Upload a smaller video."
    ),
    # gpu.video.decode and gpu.streaming: a source that breaks while it is decoded
    gettext_noop(
        "The video could not be decoded from frame %(frame)s on: the file is damaged. "
        "Repair or re-export the video and upload it again."
    ),
    gettext_noop(
        "The input could not be decoded at frame %(frame)s. The file may be damaged; "
        "re-export it or upload another copy."
    ),
    gettext_noop("The input has no video frames that can be decoded. Check the file plays, or re-export it."),
    # gpu.video.encode, gpu.video.mux and gpu.api: writing the result
    gettext_noop("The output file %(path)s could not be created. Check the folder exists and is writable."),
    gettext_noop("Writing the output video failed. Check that the disk has free space, then retry."),
    gettext_noop(
        "The disk holding the results is full, so the result could not be written. "
        "Free some space or ask the operator, then retry the task."
    ),
    gettext_noop(
        "Writing the result failed. Retry the task; if it fails again, ask the operator to check the results "
        "folder."
    ),
    gettext_noop(
        "The source is HDR (%(transfer)s) and the output is 8-bit: no tone mapping was done, so the HDR "
        "signal is kept as it is and may show banding. Choose 10-bit HEVC to keep the full depth."
    ),
    gettext_noop(
        "Audio stream %(index)s (%(codec)s) cannot be stored in %(container)s as it is; "
        "it was re-encoded to AAC."
    ),
    gettext_noop(
        "Audio stream %(index)s (%(codec)s) cannot be stored in %(container)s as it is; "
        "it was re-encoded to FLAC (lossless)."
    ),
    gettext_noop("Subtitle stream %(index)s (%(codec)s) cannot be stored in MKV and was dropped."),
    gettext_noop("Subtitle stream %(index)s (%(codec)s) cannot be stored in MP4; choose MKV to keep it."),
    # gpu.api, gpu.upscalers and gpu.flashvsr: model and memory problems
    gettext_noop(
        "The frame buffer limit is too small for this video and variant; ask the operator to raise it."
    ),
    gettext_noop(
        "The %(variant)s variant is not available in this installation yet. Choose one of: %(choices)s."
    ),
    gettext_noop("The FlashVSR weights could not be loaded."),
    gettext_noop(
        "The FlashVSR weights in %(folder)s could not be loaded for the %(variant)s variant. Run `python "
        "manage.py flashvsr_assets --verify` to find the bad file, then `python manage.py download_weights` "
        "to fetch it again."
    ),
    # gpu.upscalers.flashvsr: out of GPU memory, with the advice that fits the scale and variant
    gettext_noop(
        "The GPU ran out of memory. To fix it, choose a smaller scale than %(scale)s, or turn tiling on, or "
        "use the tiny_long variant, whose memory does not grow with the video length."
    ),
    gettext_noop(
        "The GPU ran out of memory. To fix it, choose a smaller scale than %(scale)s, or turn tiling on."
    ),
    gettext_noop(
        "The GPU ran out of memory. To fix it, turn tiling on, or use the tiny_long variant, whose memory "
        "does not grow with the video length."
    ),
    gettext_noop("The GPU ran out of memory. To fix it, turn tiling on."),
    gettext_noop("The Wan VAE weights are incomplete. Download the model files again."),
    gettext_noop("The TCDecoder weights are incomplete. Download the model files again."),
    gettext_noop("The TCDecoder weights have an unexpected layout. Download the model files again."),
    # gpu.assets: weight readiness summaries, a list of problems joined with "; "
    gettext_noop("ready: %(count)s files, %(kind)s, %(check)s"),
    gettext_noop("release weights"),
    gettext_noop("reduced test weights"),
    gettext_noop("verified"),
    gettext_noop("sizes checked"),
    gettext_noop("not ready: %(problem)s"),
    gettext_noop("%(name)s is missing"),
    gettext_noop("release files and reduced test files are mixed in one folder"),
    gettext_noop("replace the test files with the release files"),
    # tasks_app.jobs: the worker's own message with a value (messages without values match exactly)
    gettext_noop(
        "The task was stopped because it ran longer than the time limit of %(limit)d seconds. "
        "A retry would stop at the same limit, so upload a shorter clip or choose a smaller scale "
        "or a faster variant."
    ),
)


# Joins the parts of a list message such as "not ready: a is missing; b is missing".
LIST_SEPARATOR = gettext_noop("; ")


def localize(message: str) -> str:
    """Return `message` in the active language, or unchanged when it is not a known message.

    Text captured by a placeholder is translated too when it is a known message. A message that matches no
    template but contains "; " is translated part by part.
    """
    if not message:
        return message
    translated = gettext(message)
    if translated != message:
        return translated
    for template, pattern in _patterns():
        match = pattern.fullmatch(message)
        if match:
            values = {name: localize(value) for name, value in match.groupdict().items()}
            return PLACEHOLDER.sub(r"%(\1)s", gettext(template)) % values
    if "; " in message:
        return gettext(LIST_SEPARATOR).join(localize(part) for part in message.split("; "))
    return message


@cache
def _patterns() -> tuple[tuple[str, re.Pattern], ...]:
    return tuple(
        (template, _pattern_for(template)) for template in STORED_MESSAGES if PLACEHOLDER.search(template)
    )


def _pattern_for(template: str) -> re.Pattern:
    parts = []
    position = 0
    for placeholder in PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[position : placeholder.start()]))
        # A value never spans a "; ", so list messages are split into their parts instead of captured whole.
        parts.append(f"(?P<{placeholder.group(1)}>[^;]+?)")
        position = placeholder.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)
