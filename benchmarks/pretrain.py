"""Pretrain the shipped ``default`` weights without labels: the inpainter I, the flow inpainter I_f, D and S.

    python benchmarks/pretrain.py data --out runs/pretrain                 # synthetic scenes + real sequences
    python benchmarks/pretrain.py inpainter --out runs/pretrain [--steps N] [key=value ...]
    python benchmarks/pretrain.py flow-inpainter --out runs/pretrain [--steps N] [key=value ...]
    python benchmarks/pretrain.py stage2 --out runs/pretrain [--steps N] [key=value ...]
    python benchmarks/pretrain.py model --out runs/pretrain                # stage 2's latest D + S -> stage2/model.pt
    python benchmarks/pretrain.py bundle --out runs/pretrain [--to PATH]   # -> src/inpaintseg/weights/default.pt
    python benchmarks/pretrain.py snapshot --out runs/pretrain             # resumable checkpoints -> pretrain_state/

Every phase resumes from its last checkpoint (``OUT/<phase>/*_last.pt``), so a phase can be run again after
an interruption, or with a larger ``--steps`` to train further. Phases are independent runs of the package's
own training functions with the ``cpu`` preset; ``inpainter`` and ``stage2`` can run at the same time (one
torch thread each: ``train.threads=1``).

The data (``data``): synthetic scenes from the project's generator (seeds disjoint from the synthetic
benchmark's, which uses 0 for training and 1000 for testing) and the real sequences of a DAVIS-layout folder
except ``HELD_OUT``, which are kept for measuring the weights on sequences they never saw
(``OUT/data/heldout`` links them with their annotations; annotations are never linked into the training set).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from inpaintseg.config import Config, resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.pipeline import prepare_data, run_training
from inpaintseg.engine.train_inpainter import train_inpainter

SYNTHETIC = (("ptz", 2101, 48), ("handheld", 2102, 48), ("static", 2103, 16))
"""(camera, seed, sequences) of the synthetic scenes; 30 frames each at the generator's 320x180."""
SYNTHETIC_FRAMES = 30
HELD_OUT = ("bmx-bumps", "bus", "elephant", "hockey", "lucia", "motorbike", "rollerblade", "stroller", "tennis")
"""DAVIS 2016 training sequences never used in pretraining: every third in alphabetical order (the second,
fifth, ...), mostly people in sport, the domain the package is for."""
PHASES = ("data", "inpainter", "flow-inpainter", "stage2", "model", "bundle", "snapshot")
STATE = Path(__file__).resolve().parent.parent / "pretrain_state"
"""Committed copies of the phases' resumable checkpoints (``snapshot``), so that pretraining can continue on
another machine; a phase whose run folder has no checkpoint of its own starts from them. Removed once the final
weights are in the package."""
RESUMABLE = {"inpainter": ["inpainter_last.pt", "inpainter_metrics.jsonl"],
             "flow-inpainter": ["flow_inpainter_last.pt", "flow_inpainter_metrics.jsonl"],
             "stage2": ["train_last.pt", "train_metrics.jsonl"]}


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=True)


def build_data(out: Path, davis: Path) -> dict:
    """Write the synthetic scenes and link the real sequences: ``OUT/data/pretrain`` (frames only; what the phases
    train on), ``OUT/data/heldout`` (frames and annotations of ``HELD_OUT``) and ``OUT/data/seen`` (frames and
    annotations of the real training sequences, to compare with the held-out ones). Returns what was linked."""
    data = out / "data"
    train = data / "pretrain" / "JPEGImages"
    for camera, seed, sequences in SYNTHETIC:
        root = data / f"synth-{camera}"
        if not (root / "meta.json").exists():
            generate(root, camera=camera, sequences=sequences, frames=SYNTHETIC_FRAMES, seed=seed, progress=True)
        for seq in sorted((root / "JPEGImages").iterdir()):
            _link(seq, train / f"synth-{camera}-{seq.name}")
    real = sorted(p for p in (davis / "JPEGImages").iterdir() if p.is_dir())
    missing = set(HELD_OUT) - {p.name for p in real}
    if missing:
        raise SystemExit(f"{davis}: held-out sequences missing: {', '.join(sorted(missing))}")
    used = [p.name for p in real if p.name not in HELD_OUT]
    for name in used:
        _link(davis / "JPEGImages" / name, train / f"davis-{name}")
        for kind in ("JPEGImages", "Annotations"):  # to measure the weights on scenes they have seen
            _link(davis / kind / name, data / "seen" / kind / name)
    for name in HELD_OUT:
        for kind in ("JPEGImages", "Annotations"):
            _link(davis / kind / name, data / "heldout" / kind / name)
    summary = {"synthetic": [list(s) for s in SYNTHETIC], "synthetic_frames": SYNTHETIC_FRAMES,
               "real": used, "held_out": list(HELD_OUT), "davis": str(davis)}
    (data / "pretrain.json").write_text(json.dumps(summary, indent=1))
    return summary


def phase_config(phase: str, steps: int | None, overrides: list[str]) -> Config:
    """The cpu preset with each phase's data settings and a step budget instead of a time budget."""
    fixed = {
        "inpainter": ["data.background=inpainter", "data.flow=false", "inpainter.minutes=0"],
        "flow-inpainter": ["data.background=inpainter", "data.flow=true", "inpainter.minutes=0"],
        # zoom and colour jitter widen the few real scenes (they joined at stage-2 step 5,900; docs/pretraining.md)
        "stage2": ["data.background=temporal", "data.flow=true", "train.minutes=0", "train.zoom=1.5",
                   "train.jitter=0.2"],
    }[phase]
    key = "train.steps" if phase == "stage2" else "inpainter.steps"
    budget = [f"{key}={steps}"] if steps else []
    return resolve("cpu", overrides=[*fixed, *budget, "train.init=none", "train.checkpoint_every=100", *overrides])


def snapshot(out: Path) -> list[Path]:
    """Copy each phase's resumable checkpoint and its metrics into ``STATE`` (to be committed)."""
    copied = []
    for phase, names in RESUMABLE.items():
        for name in names:
            if (out / phase / name).is_file():
                (STATE / phase).mkdir(parents=True, exist_ok=True)
                shutil.copy2(out / phase / name, STATE / phase / name)
                copied.append(STATE / phase / name)
    return copied


def run_phase(phase: str, out: Path, steps: int | None, overrides: list[str]) -> Path:
    cfg = phase_config(phase, steps, overrides)
    data, run_dir = out / "data" / "pretrain", out / phase
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / RESUMABLE[phase][0]).exists() and (STATE / phase / RESUMABLE[phase][0]).is_file():
        for name in RESUMABLE[phase]:  # continue from the committed snapshot
            if (STATE / phase / name).is_file():
                shutil.copy2(STATE / phase / name, run_dir / name)
    if phase != "flow-inpainter":  # stage 2, or stage 1 alone as ``inpaintseg train-inpainter`` runs it
        return run_training(cfg, data, run_dir, resume=True, inpainter_only=phase == "inpainter")
    bank = prepare_data(cfg, data, run_dir)  # I_f alone: the flow images of the frames
    cfg.save(run_dir / "config.yaml")
    return train_inpainter(cfg, bank.flow_bank(), run_dir, resume=True, name="flow_inpainter")


def resumable(out: Path, phase: str) -> Path:
    """A phase's resumable checkpoint: in its run folder, or else the committed copy in ``STATE``."""
    name = RESUMABLE[phase][0]
    return out / phase / name if (out / phase / name).is_file() else STATE / phase / name


def stage2_model(out: Path) -> Path:
    """``OUT/stage2/model.pt`` (what ``predict`` loads) from stage 2's latest resumable checkpoint, in the run folder
    or else in ``STATE``: D and S with the weight average's parameters, as training writes them when it stops."""
    from inpaintseg.config import from_dict
    from inpaintseg.engine.checkpoint import load_checkpoint, save_checkpoint
    from inpaintseg.engine.train import model_payload
    from inpaintseg.models.model import build_model

    payload = load_checkpoint(resumable(out, "stage2"))
    cfg = from_dict(payload["config"])
    model = build_model(cfg)
    prefix = "module."  # torch's AveragedModel keeps the averaged network under this prefix
    averaged = {k[len(prefix):]: v for k, v in payload.get("ema", {}).items() if k.startswith(prefix)}
    model.load_state_dict(averaged or payload["model"])
    path = out / "stage2" / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model_payload(model, cfg, int(payload["step"])))
    return path


def furthest(out: Path, phase: str, name: str) -> Path:
    """A phase's final ``<name>.pt`` or its resumable checkpoint, whichever has trained further: a phase stopped
    early and resumed with a larger budget leaves its earlier final file behind."""
    from inpaintseg.engine.checkpoint import load_checkpoint

    candidates = [p for p in (out / phase / f"{name}.pt", resumable(out, phase)) if p.is_file()]
    if not candidates:
        return out / phase / f"{name}.pt"
    return max(candidates, key=lambda p: int(load_checkpoint(p)["step"]))


def bundle(out: Path, to: Path | None = None) -> Path:
    """A bundle (by default ``src/inpaintseg/weights/default.pt``; ``to`` writes a candidate elsewhere, to measure
    it as ``train.init=PATH`` before it replaces the shipped one) from the phases' furthest-trained checkpoints,
    with their provenance."""
    from machine import machine_line

    from inpaintseg.engine.checkpoint import load_checkpoint
    from inpaintseg.weights import WEIGHTS_DIR, write_bundle

    parts = {"stage2": out / "stage2" / "model.pt", "inpainter": furthest(out, "inpainter", "inpainter"),
             "flow_inpainter": furthest(out, "flow-inpainter", "flow_inpainter")}
    steps, hours = {}, {}
    for key, path in parts.items():
        if path.exists():
            payload = load_checkpoint(resumable(out, "stage2") if key == "stage2" else path)
            steps[key], hours[key] = int(payload["step"]), round(payload.get("elapsed_s", 0.0) / 3600, 2)
    info = {"data": json.loads((out / "data" / "pretrain.json").read_text()), "steps": steps, "hours": hours,
            "bundled_on": machine_line(1), "licence": "CC BY-NC 4.0 (trained on DAVIS 2016 frames)"}
    dest = to or WEIGHTS_DIR / "default.pt"
    return write_bundle(parts["stage2"], parts["inpainter"], parts["flow_inpainter"], out=dest, info=info)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=PHASES)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--davis", type=Path, default=Path("../shared/data/davis2016-train-240p"))
    ap.add_argument("--steps", type=int, help="step budget of the phase (default: the cpu preset's)")
    ap.add_argument("--to", type=Path, help="bundle: where to write it (default: the package's default.pt)")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    a, extra = ap.parse_known_args(argv)
    bad = [e for e in extra if "=" not in e or e.startswith("-")]
    if bad:
        ap.error(f"unrecognized arguments: {' '.join(bad)}")
    a.overrides = [*a.overrides, *extra]
    if a.phase == "data":
        print(json.dumps(build_data(a.out, a.davis), indent=1))
    elif a.phase == "model":
        print(f"wrote {stage2_model(a.out)}")
    elif a.phase == "bundle":
        print(f"wrote {bundle(a.out, a.to)}")
    elif a.phase == "snapshot":
        print("\n".join(f"copied {p}" for p in snapshot(a.out)))
    else:
        print(f"wrote {run_phase(a.phase, a.out, a.steps, a.overrides)}")


if __name__ == "__main__":
    sys.exit(main())
