"""gunicorn settings for the FlashVSR web process (systemd unit deploy/systemd/flashvsr-web.service).

nginx ends TLS and forwards to this address, which nothing else should reach.
"""

import multiprocessing

bind = "127.0.0.1:8000"
# Sync workers: each request occupies one worker. Uploads arrive from nginx only after nginx has buffered the
# whole body, and downloads go out through X-Accel-Redirect, so requests are short.
workers = min(2 * multiprocessing.cpu_count() + 1, 9)
# Storing a 2 GB upload means hashing and probing it, which can take minutes on a slow disk.
timeout = 300
graceful_timeout = 30
# gunicorn's worker heartbeat files, in memory so that a busy disk cannot stall them.
worker_tmp_dir = "/dev/shm"
# Trust X-Forwarded-* headers only from nginx on this machine.
forwarded_allow_ips = "127.0.0.1"
# gunicorn 25.1 and later create a control socket for `gunicornc` in $XDG_RUNTIME_DIR, else in
# $HOME/.gunicorn. A system unit has no XDG_RUNTIME_DIR, and ProtectSystem=strict makes the home folder
# read-only, so creating the socket fails with a warning at every start. The site does not use gunicornc.
# Older gunicorn versions ignore setting names they do not know.
control_socket_disable = True
# Django logs its own lines to stdout (LOG_FORMAT); gunicorn's access and error logs go to the journal too.
accesslog = "-"
errorlog = "-"
access_log_format = (
    'remote=%({x-forwarded-for}i)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s'
)
