"""Run one benchmark step as a child process and read the kernel's resource usage of that child alone."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path


def run_child(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, resource.struct_rusage]:
    """Run `command` with its output discarded; return (wall seconds, rusage of the child).

    Exits with the command's last 2,000 characters of stderr when it fails.
    """
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}:\n{stderr[-2000:]}")
    return elapsed, usage
