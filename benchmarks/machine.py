"""The machine line printed at the top of every benchmark (imported by the scripts in this folder)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from inpaintseg.engine.common import cpu_has_native_bf16


def machine_line(threads: int) -> str:
    """CPU model, logical CPUs, native bf16, torch threads and version, python version, date and time."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"machine: {cpu} ({os.cpu_count()} logical CPUs, native bf16: {cpu_has_native_bf16()}), "
            f"{threads} torch threads, torch {torch.__version__}, python {platform.python_version()}, "
            f"date {time.strftime('%Y-%m-%d %H:%M')}")
