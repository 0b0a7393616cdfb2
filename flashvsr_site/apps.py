from django.apps import AppConfig


class SiteConfig(AppConfig):
    """Site-wide wiring that belongs to no feature app: the log context of django-q2 jobs."""

    name = "flashvsr_site"
    verbose_name = "FlashVSR site"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        from .logs import on_job_end, on_job_start

        pre_execute.connect(on_job_start, dispatch_uid="flashvsr_log_context_start")
        post_execute_in_worker.connect(on_job_end, dispatch_uid="flashvsr_log_context_end")
