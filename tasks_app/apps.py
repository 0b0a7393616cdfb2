from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = _("Upscaling tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from . import checks  # noqa: F401  (registers the system checks)
        from .heartbeat import on_worker_spawn
        from .preload import on_worker_spawn as preload_on_worker_spawn

        post_spawn.connect(on_worker_spawn, dispatch_uid="tasks_app.heartbeat.on_worker_spawn")
        post_spawn.connect(preload_on_worker_spawn, dispatch_uid="tasks_app.preload.on_worker_spawn")
