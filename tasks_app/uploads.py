"""Upload handling: stream to a temporary file on the media volume, enforce the size limit, hash the bytes."""

from __future__ import annotations

import hashlib
import logging
import os

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import Status, Task

logger = logging.getLogger(__name__)

# Set on the request when an upload was stopped, so the view can show why the file is missing.
REJECTION_ATTRIBUTE = "upload_rejection"


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Write each uploaded file to FILE_UPLOAD_TEMP_DIR, computing its SHA-256 while it streams in.

    A file larger than FLASHVSR_MAX_UPLOAD_BYTES stops the upload as soon as the limit is passed, and closing
    the partial temporary file deletes it. The rest of the request body is read and discarded without being
    stored, so the browser still receives the page that explains the rejection.
    """

    request_content_length: int | None = None

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request_content_length = content_length
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def new_file(self, *args, **kwargs) -> None:
        os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
        self.max_bytes = settings.FLASHVSR_MAX_UPLOAD_BYTES
        self.received_bytes = 0
        self.sha256 = hashlib.sha256()
        super().new_file(*args, **kwargs)
        self._check_uploader()
        declared = self.request_content_length
        if declared and declared > self.max_bytes + _MULTIPART_OVERHEAD_BYTES:
            self._reject()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received_bytes += len(raw_data)
        if self.received_bytes > self.max_bytes:
            self._reject()
        self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.sha256.hexdigest()
        return uploaded

    def _check_uploader(self) -> None:
        """Stop the upload before any byte is stored when the sender may not upload at all.

        CsrfViewMiddleware reads request.POST before the view's login check runs, so without this an anonymous
        client could stream a whole body to the temporary folder.
        """
        user = getattr(self.request, "user", None)
        if user is None or not user.is_authenticated:
            logger.info("Upload stopped: the request is not logged in")
            raise StopUpload(connection_reset=False)
        match = getattr(self.request, "resolver_match", None)
        if match is None or match.url_name != "task_create":
            return
        message = queued_task_limit_message(user)
        if message:
            setattr(self.request, REJECTION_ATTRIBUTE, message)
            logger.info("Upload by user %s stopped: FLASHVSR_MAX_QUEUED_TASKS_PER_USER reached", user.pk)
            raise StopUpload(connection_reset=False)

    def _reject(self) -> None:
        message = _(
            "The file is larger than the upload limit of %(limit)s. Upload a smaller or shorter video."
        ) % {"limit": filesizeformat(self.max_bytes)}
        setattr(self.request, REJECTION_ATTRIBUTE, message)
        logger.info(
            "Upload stopped after %d bytes: over FLASHVSR_MAX_UPLOAD_BYTES=%d (declared request size %s)",
            self.received_bytes,
            self.max_bytes,
            self.request_content_length,
        )
        raise StopUpload(connection_reset=False)


# The multipart body carries form fields and boundaries besides the file; allow for them before rejecting a
# request on its declared Content-Length alone.
_MULTIPART_OVERHEAD_BYTES = 64 * 1024


def queued_task_limit_message(user) -> str | None:
    """Return why `user` cannot queue another task, or None if FLASHVSR_MAX_QUEUED_TASKS_PER_USER allows one.

    NOTE: two uploads finishing at the same moment can both pass this check, so a user can end up one or two
    tasks over the cap. The cap keeps one user from filling the queue and is not a hard quota.
    """
    cap = settings.FLASHVSR_MAX_QUEUED_TASKS_PER_USER
    if not cap:
        return None
    queued = Task.objects.filter(owner=user, status=Status.QUEUED).count()
    if queued < cap:
        return None
    return ngettext(
        "You already have %(count)d video waiting in the queue, the maximum per user. "
        "Wait until it starts or cancel it, then upload again.",
        "You already have %(count)d videos waiting in the queue, the maximum per user. "
        "Wait until one of them starts or cancel one, then upload again.",
        queued,
    ) % {"count": queued}
