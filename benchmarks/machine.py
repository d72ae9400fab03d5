"""The machine line of every benchmark figure, and the one writer of ``results.jsonl`` (imported by the scripts in
this folder)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
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


RESULTS = Path(__file__).parent / "results.jsonl"


def append_result(record: dict, results: Path = RESULTS) -> dict:
    """Append ``record`` as one line of ``results`` (default ``benchmarks/results.jsonl``, next to the running
    script), completed with the command that ran (``python SCRIPT ARGS``, unless given), the commit, the machine
    and the date. Returns the line's object."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    line = {"command": "python " + " ".join(shlex.quote(x) for x in [_script(), *sys.argv[1:]]), **record,
            "commit": commit, "machine": machine_line(torch.get_num_threads()), "date": time.strftime("%Y-%m-%d %H:%M")}
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return line


def _script() -> str:
    """The running script as ``benchmarks/NAME.py`` when it is one of this folder's, else as given."""
    path = Path(sys.argv[0])
    return f"benchmarks/{path.name}" if path.resolve().parent == Path(__file__).resolve().parent else str(path)
