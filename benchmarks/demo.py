"""The README's first quickstart command, timed: ``inpaintseg demo`` start to finish, one results.jsonl line.

    python benchmarks/demo.py --out runs/demo [key=value ...]

Runs ``inpaintseg demo --out OUT`` in a fresh process (data generation, both training stages, prediction with
the default GrabCut refinement, evaluation and the report), measures its wall time, and appends the evaluation
(``OUT/eval.json``: J, F, mAP@0.5) with the wall time, command, commit and machine to ``benchmarks/results.jsonl``.
The demo's bar: J >= 0.70 within 15 minutes on 2 CPU cores. Run it on an otherwise idle machine: the demo trains
for a fixed number of minutes, so a busy machine trains fewer steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from machine import append_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    a = ap.parse_args()
    t0 = time.time()
    subprocess.run(["inpaintseg", "demo", "--out", str(a.out), *a.overrides], check=True)
    seconds = time.time() - t0
    result = json.loads((a.out / "eval.json").read_text())
    append_result({
        "dataset": "synthetic", "camera": "ptz", "demo": True, "overrides": a.overrides,
        "J": result["J_mean"], "F": result["F_mean"], "mAP50": result["mAP50"], "threshold": result["threshold"],
        "refine": "grabcut", "wall_s": round(seconds, 1), "sequences": result["sequences"],
    })
    print(f"demo: J {result['J_mean']:.3f} / F {result['F_mean']:.3f} / mAP@0.5 {result['mAP50']:.3f} "
          f"in {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
