from django.apps import AppConfig


class SiteConfig(AppConfig):
    """Site-wide wiring of django-q2 worker processes: the log context of jobs and the stop-signal handler."""

    name = "flashvsr_site"
    verbose_name = "FlashVSR site"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

        from .logs import on_job_end, on_job_start
        from .shutdown import install_worker_stop_handler

        pre_execute.connect(on_job_start, dispatch_uid="flashvsr_log_context_start")
        post_execute_in_worker.connect(on_job_end, dispatch_uid="flashvsr_log_context_end")
        post_spawn.connect(install_worker_stop_handler, dispatch_uid="flashvsr_worker_stop_signals")
