"""File responses that support HTTP Range requests (RFC 9110 section 14); Django's FileResponse does not."""

from __future__ import annotations

import mimetypes
import os
import re
from urllib.parse import quote

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

CHUNK_BYTES = 256 * 1024
_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

CONTENT_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska"}


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """Parse a single-range `Range` header against a file of `size` bytes.

    Returns (first, last) inclusive byte positions; None when the header should be ignored (absent, another
    unit, several ranges, or malformed, all of which RFC 9110 lets a server answer with the whole file); or
    False when the range cannot be satisfied (416).
    """
    match = _SINGLE_RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        return False
    return first, min(last, size - 1)


def ranged_file_response(
    request: HttpRequest, path: str, *, filename: str, as_attachment: bool, content_type: str | None = None
) -> HttpResponse:
    """Serve `path` whole (200), one byte range of it (206), or 416 when the requested range is outside it.

    `content_type` defaults to the type guessed from the extension of `path`.
    """
    size = os.path.getsize(path)
    content_type = content_type or content_type_for(path)
    byte_range = parse_range(request.headers.get("Range", ""), size)
    if byte_range is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif byte_range is None:
        response = FileResponse(open(path, "rb"), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        first, last = byte_range
        response = StreamingHttpResponse(
            _read_range(path, first, last), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = content_disposition_header(as_attachment, filename)
    return response


def stored_file_response(
    request: HttpRequest,
    stored_file: FieldFile,
    *,
    filename: str,
    as_attachment: bool,
    content_type: str | None = None,
) -> HttpResponse:
    """Serve a file stored under MEDIA_ROOT, offered to the client as `filename`.

    With FLASHVSR_X_ACCEL_REDIRECT_PREFIX set and the file present, nginx sends it. Otherwise Django sends it
    with Range support. Raises FileNotFoundError when the file is missing from disk.
    """
    prefix = settings.FLASHVSR_X_ACCEL_REDIRECT_PREFIX
    if prefix and os.path.isfile(stored_file.path):
        return x_accel_response(
            prefix,
            stored_file.name,
            filename=filename,
            as_attachment=as_attachment,
            content_type=content_type,
        )
    return ranged_file_response(
        request,
        stored_file.path,
        filename=filename,
        as_attachment=as_attachment,
        content_type=content_type,
    )


def x_accel_response(
    prefix: str, media_name: str, *, filename: str, as_attachment: bool, content_type: str | None = None
) -> HttpResponse:
    """Hand the file `media_name` (relative to MEDIA_ROOT) to nginx through an `X-Accel-Redirect` header.

    nginx serves it from the `internal` location for `prefix` and handles Range requests itself, so the body
    here stays empty. Content-Type and Content-Disposition set here are kept by nginx.
    """
    response = HttpResponse(content_type=content_type or content_type_for(media_name))
    response["X-Accel-Redirect"] = prefix + quote(media_name)
    response["Content-Disposition"] = content_disposition_header(as_attachment, filename)
    return response


def content_type_for(path: str) -> str:
    known = CONTENT_TYPES.get(os.path.splitext(path)[1].lower())
    return known or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _read_range(path: str, first: int, last: int):
    with open(path, "rb") as handle:
        handle.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
