"""Classical baselines on a DAVIS-layout folder, evaluated like the model: one results.jsonl line per baseline.

    python benchmarks/baselines.py bgsub --data ../shared/data/davis2016-train-240p --out runs/baseline_bgsub
    python benchmarks/baselines.py bgsub --data runs/pretrain/data/heldout --out runs/bgsub_heldout

Runs ``inpaintseg baseline NAME`` (``bgsub``: homography-aligned background subtraction with the neighbouring
frames; ``mog2``; ``saliency``; ``center``: a centred Gaussian prior) on every frame, evaluates the soft masks
(J, F; the baselines give no boxes, so no mAP), then the same masks refined by ``predict``'s default GrabCut
refinement seeded with them (``grabcut.refine_grabcut``), evaluated again. Appends one JSON line to
``benchmarks/results.jsonl`` with both figures, the command, the commit and the machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from machine import append_result

from inpaintseg.baselines import BASELINES, run_baseline
from inpaintseg.data.image_io import read_mask, write_png
from inpaintseg.data.sources import Sequence, open_source
from inpaintseg.engine.data import parallel_map
from inpaintseg.evaluate import run as run_evaluate
from inpaintseg.grabcut import refine_grabcut


def refine_folder(source: Path, soft: Path, out: Path) -> Path:
    """GrabCut-refine every soft mask ``soft/<seq>/<frame>.png`` on its frame of ``source``; write ``out``."""
    jobs = [(seq, i, soft / seq.name / f"{name}.png", out / seq.name / f"{name}.png")
            for seq in open_source(source).sequences for i, name in enumerate(seq.frame_names)]

    def refine(job: tuple[Sequence, int, Path, Path]) -> None:
        seq, i, mask_path, out_path = job
        mask = read_mask(mask_path).astype(np.float32) / 255.0
        refined = refine_grabcut(seq.read(i), mask)
        write_png(out_path, np.round(np.clip(refined, 0.0, 1.0) * 255.0).astype(np.uint8))

    parallel_map(refine, jobs, "grabcut", "frame", progress=False, workers=torch.get_num_threads())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline", choices=BASELINES)
    ap.add_argument("--data", type=Path, required=True, help="DAVIS layout: JPEGImages/ and Annotations/")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=0, help="torch threads = GrabCut workers (0: torch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    soft = run_baseline(a.baseline, a.data / "JPEGImages", a.out / "pred_raw", progress=False)
    seconds = time.time() - t0
    raw = run_evaluate(soft, a.data, a.out / "eval_raw.json")
    refined = run_evaluate(refine_folder(a.data / "JPEGImages", soft, a.out / "pred"), a.data, a.out / "eval.json")
    append_result({
        "dataset": "davis", "baseline": a.baseline, "data": str(a.data),
        "J": refined["J_mean"], "F": refined["F_mean"], "mAP50": None, "threshold": refined["threshold"],
        "refine": "grabcut",
        "raw": {"J": raw["J_mean"], "F": raw["F_mean"], "mAP50": None, "threshold": raw["threshold"]},
        "baseline_s": round(seconds, 1), "sequences": refined["sequences"],
    })
    print(f"{a.baseline}: J {raw['J_mean']:.3f} / F {raw['F_mean']:.3f} raw, "
          f"J {refined['J_mean']:.3f} / F {refined['F_mean']:.3f} refined")


if __name__ == "__main__":
    main()
