from django.urls import path

from . import media_views, operation_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("tasks/new/", views.task_create, name="task_create"),
    path("tasks/<uuid:task_id>/", views.task_detail, name="task_detail"),
    path("tasks/<uuid:task_id>/download/", views.task_download, name="task_download"),
    path("tasks/<uuid:task_id>/preview.jpg", media_views.task_preview, name="task_preview"),
    path(
        "tasks/<uuid:task_id>/compare/<str:kind>.jpg",
        media_views.task_comparison_image,
        name="task_comparison_image",
    ),
    path("tasks/<uuid:task_id>/source/", media_views.task_source, name="task_source"),
    path("tasks/<uuid:task_id>/cancel/", operation_views.task_cancel, name="task_cancel"),
    path("tasks/<uuid:task_id>/retry/", operation_views.task_retry, name="task_retry"),
    path("tasks/<uuid:task_id>/delete/", operation_views.task_delete, name="task_delete"),
    path("status/", operation_views.status_panel, name="status_panel"),
]
