import copy
import os

import pytest

from tasks_app.checks import check_gpu_cluster_retry, check_upload_temp_dir_on_media_volume


def test_default_settings_pass_checks():
    assert check_gpu_cluster_retry(None) == []
    assert check_upload_temp_dir_on_media_volume(None) == []


def test_retry_not_above_timeout_is_error(settings):
    q_cluster = copy.deepcopy(settings.Q_CLUSTER)
    q_cluster["ALT_CLUSTERS"]["gpu"]["retry"] = q_cluster["ALT_CLUSTERS"]["gpu"]["timeout"]
    settings.Q_CLUSTER = q_cluster
    assert [message.id for message in check_gpu_cluster_retry(None)] == ["tasks_app.E003"]


def test_missing_gpu_cluster_is_error(settings):
    q_cluster = copy.deepcopy(settings.Q_CLUSTER)
    del q_cluster["ALT_CLUSTERS"]["gpu"]
    settings.Q_CLUSTER = q_cluster
    assert [message.id for message in check_gpu_cluster_retry(None)] == ["tasks_app.E002"]


def test_temp_dir_on_other_filesystem_warns(settings):
    if os.stat("/dev/shm").st_dev == os.stat(settings.MEDIA_ROOT).st_dev:
        pytest.skip("/dev/shm is on the same filesystem as the test media root here")
    settings.FILE_UPLOAD_TEMP_DIR = "/dev/shm"
    assert [message.id for message in check_upload_temp_dir_on_media_volume(None)] == ["tasks_app.W001"]
