"""Admin for tasks and worker heartbeats, with cancel, retry and clean-up actions that also handle files.

Deleting a task here (one row or the built-in bulk action) removes its files too, because Django never
deletes a model's files when the row goes.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import FINISHED_STATUSES, Task, WorkerHeartbeat
from .operations import FilesRemoved, OperationRejected, cancel_task, delete_task, retry_task

# Fields only the worker and the operations write; an admin edit would contradict what the worker does.
WORKER_OWNED_FIELDS = (
    "status",
    "progress",
    "processed_frames",
    "total_frames",
    "frames_per_second",
    "eta_seconds",
    "created_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "error_detail",
    "cancel_requested",
    "attempt",
    "retry_of",
    "worker_id",
    "result_file",
    "result_size",
    "preview_file",
    "input_file",
    "input_size",
    "input_sha256",
    "source_metadata",
)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = (
        "original_filename",
        "status",
        "owner",
        "variant",
        "scale",
        "progress_display",
        "input_size_display",
        "result_size_display",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "variant", "scale", "owner", "created_at", "finished_at")
    search_fields = (
        "id",
        "original_filename",
        "owner__username",
        "input_sha256",
        "worker_id",
        "error_message",
    )
    date_hierarchy = "created_at"
    readonly_fields = WORKER_OWNED_FIELDS
    list_select_related = ("owner",)
    actions = ("cancel_selected", "retry_selected", "clean_up_selected")

    @admin.display(description=_("progress"), ordering="progress")
    def progress_display(self, task: Task) -> str:
        return f"{task.progress_percent}%"

    @admin.display(description=_("input size"), ordering="input_size")
    def input_size_display(self, task: Task) -> str:
        return filesizeformat(task.input_size)

    @admin.display(description=_("result size"), ordering="result_size")
    def result_size_display(self, task: Task) -> str:
        return filesizeformat(task.result_size) if task.result_size is not None else "–"

    @admin.action(description=_("Cancel selected tasks"))
    def cancel_selected(self, request, queryset) -> None:
        done = self._apply(request, queryset, cancel_task)
        self.message_user(
            request,
            ngettext("%d task cancelled or asked to stop.", "%d tasks cancelled or asked to stop.", done)
            % done,
        )

    @admin.action(description=_("Retry selected tasks as new tasks"))
    def retry_selected(self, request, queryset) -> None:
        done = self._apply(request, queryset, retry_task)
        self.message_user(request, ngettext("%d retry queued.", "%d retries queued.", done) % done)

    @admin.action(description=_("Clean up selected finished tasks (delete them with their files)"))
    def clean_up_selected(self, request, queryset) -> None:
        finished = queryset.filter(status__in=FINISHED_STATUSES)
        skipped = queryset.exclude(status__in=FINISHED_STATUSES).count()
        deleted, removed = self._delete_with_files(request, finished)
        self.message_user(
            request,
            _(
                "%(tasks)d tasks deleted, %(files)d files removed (%(size)s); "
                "%(skipped)d queued or running tasks skipped."
            )
            % {
                "tasks": deleted,
                "files": removed.files,
                "size": filesizeformat(removed.bytes),
                "skipped": skipped,
            },
        )

    def delete_model(self, request, obj: Task) -> None:
        try:
            delete_task(obj)
        except OperationRejected as rejection:
            self.message_user(request, f"{obj}: {rejection.message}", level=messages.ERROR)

    def delete_queryset(self, request, queryset) -> None:
        self._delete_with_files(request, queryset)

    def _delete_with_files(self, request, queryset) -> tuple[int, FilesRemoved]:
        deleted, removed = 0, FilesRemoved()
        for task in queryset:
            try:
                removed.add(delete_task(task))
                deleted += 1
            except OperationRejected as rejection:
                self.message_user(request, f"{task}: {rejection.message}", level=messages.ERROR)
        return deleted, removed

    def _apply(self, request, queryset, operation) -> int:
        """Run `operation` on each task; report each rejection and return how many succeeded."""
        done = 0
        for task in queryset:
            try:
                operation(task)
                done += 1
            except OperationRejected as rejection:
                self.message_user(request, f"{task}: {rejection.message}", level=messages.WARNING)
        return done


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = (
        "worker_id",
        "cluster",
        "gpu_name",
        "gpu_memory_display",
        "current_task",
        "seen_at",
        "started_at",
    )
    list_filter = ("cluster", "host")
    search_fields = ("worker_id", "host", "gpu_name")
    readonly_fields = (
        "worker_id",
        "host",
        "pid",
        "cluster",
        "gpu_name",
        "gpu_memory_used",
        "gpu_memory_total",
        "current_task",
        "started_at",
        "seen_at",
    )

    @admin.display(description=_("GPU memory"))
    def gpu_memory_display(self, beat: WorkerHeartbeat) -> str:
        if beat.gpu_memory_total is None:
            return "–"
        return f"{filesizeformat(beat.gpu_memory_used or 0)} / {filesizeformat(beat.gpu_memory_total)}"

    def has_add_permission(self, request) -> bool:
        return False
