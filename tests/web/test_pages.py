import pytest
from django.urls import reverse

from tasks_app.models import Status

pytestmark = pytest.mark.django_db


def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_renders_and_logs_in(client, user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'name="password"' in page.content.decode()
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_home_shows_form_with_csrf_and_htmx(user_client):
    response = user_client.get(reverse("home"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'hx-headers=\'{"X-CSRFToken"' in page
    assert "vendor/htmx/htmx.min.js" in page
    assert "Lanczos baseline (no model)" in page
    assert "HX-Request" in response["Vary"]


def test_table_polls_only_while_task_active(user_client, make_task):
    task = make_task(status=Status.SUCCEEDED)
    page = user_client.get(reverse("home")).content.decode()
    assert 'hx-trigger="every 2s"' not in page

    task.status = Status.RUNNING
    task.save()
    page = user_client.get(reverse("home")).content.decode()
    assert 'hx-trigger="every 2s"' in page


def test_table_fragment_for_htmx_poll(user_client, make_task):
    make_task(
        status=Status.RUNNING,
        variant="lanczos",
        progress=0.25,
        processed_frames=25,
        total_frames=100,
        frames_per_second=12.5,
        eta_seconds=6,
    )
    response = user_client.get(reverse("home"), headers={"HX-Request": "true", "HX-Target": "task-table"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="task-table"')
    assert "<html" not in page
    assert '<progress max="100" value="25">' in page
    assert "25 of 100 frames" in page
    assert "12.5 frames/s" in page
    assert "0:06 left" in page
    assert "Lanczos baseline (no model)" in page


def test_users_see_only_their_own_tasks(client, other_user, make_task):
    make_task(original_filename="alice-secret.mp4")
    client.force_login(other_user)
    page = client.get(reverse("home")).content.decode()
    assert "alice-secret.mp4" not in page


def test_task_detail_shows_error_and_notes(user_client, make_task):
    task = make_task(
        status=Status.FAILED,
        error_message="The source broke at frame 12.",
        error_detail="Traceback: secret internals",
        notes=["Subtitle stream 3 was dropped."],
        source_metadata={
            "width": 640,
            "height": 360,
            "frame_rate": [30000, 1001],
            "duration": 65.0,
            "audio": [{}],
            "subtitles": [],
        },
    )
    response = user_client.get(reverse("task_detail", args=[task.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "The source broke at frame 12." in page
    assert "Subtitle stream 3 was dropped." in page
    assert "secret internals" not in page
    assert "640×360" in page
    assert "29.97" in page
    assert "1:05" in page
    assert 'hx-trigger="every 2s"' not in page


def test_task_detail_of_other_user_is_404(client, other_user, make_task):
    task = make_task()
    client.force_login(other_user)
    assert client.get(reverse("task_detail", args=[task.pk])).status_code == 404


def test_task_detail_progress_fragment(user_client, make_task):
    task = make_task(status=Status.RUNNING, progress=0.5)
    response = user_client.get(
        reverse("task_detail", args=[task.pk]), headers={"HX-Request": "true", "HX-Target": "task-progress"}
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="task-progress"')
    assert 'hx-trigger="every 2s"' in page
    assert "HX-Request" in response["Vary"]


def test_table_shows_latest_rows_and_counts_rest(user_client, user, monkeypatch):
    from tasks_app import views
    from tasks_app.models import Task

    monkeypatch.setattr(views, "TASK_TABLE_ROWS", 3)
    for index in range(5):
        Task.objects.create(owner=user, original_filename=f"clip-{index}.mp4", status=Status.SUCCEEDED)
    page = user_client.get(reverse("home")).content.decode()
    assert page.count('<tr id="task-') == 3
    assert "2 older tasks are not shown." in page


def test_missing_page_is_translated(user_client):
    english = user_client.get("/tasks/00000000-0000-0000-0000-000000000000/")
    chinese = user_client.get(
        "/tasks/00000000-0000-0000-0000-000000000000/", HTTP_ACCEPT_LANGUAGE="zh-CN"
    )

    assert english.status_code == 404
    assert "Page not found" in english.content.decode()
    assert chinese.status_code == 404
    assert "页面不存在" in chinese.content.decode()
