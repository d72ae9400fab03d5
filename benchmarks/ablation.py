"""Ablation on the synthetic benchmark with equal budgets: the paper's figure 11 and tables 3-4.

    python benchmarks/ablation.py --out runs/ablation [--minutes 18] [--seeds 0,1] [--only defaults,uniform]
                                  [--table benchmarks/ablation.md] [--dry-run] [--resume] [--table-only]
                                  [--extra "key=value ..."] [--accuracy-args "--train-frames 60 ..."]

Each variant is a list of config overrides on top of the ``cpu`` preset (``src/inpaintseg/config.py``). For
every variant and seed this script runs

    python benchmarks/accuracy.py synthetic --out OUT/<variant>_s<seed> [ACCURACY_ARGS]
        train.minutes=M train.seed=SEED data.flow=false <variant overrides> [EXTRA]

in a subprocess, one after the other. ``data.flow=false`` (since 2026-11-27, when the cpu preset's flow was turned
on) keeps the paper's ablations without flow; earlier result lines, without it in their overrides, are not
matched by ``--table-only``. Every variant gets the same stage-2 budget (``train.minutes=M``);
variants that train the U-Net inpainter (``paper_inpainter``) spend stage 1 (``inpainter.minutes``, 5 in the
cpu preset) on top, which shows in the "train min" column (accuracy.py's ``train_s`` covers backgrounds,
stage 1 and stage 2; the first run that needs temporal backgrounds also computes them, about a minute, and
later runs load them from the shared cache).

Data is generated once: ``OUT/data`` is created empty and every variant folder gets a symlink
``<variant>_s<seed>/data -> OUT/data``; the first accuracy.py run writes the synthetic train/test sets
into it (accuracy.py generates data only when ``data/train/meta.json`` is missing) and the others reuse
them. Temporal backgrounds are cached in ``<run>/cache``; ``<variant>_s<seed>/run/cache -> OUT/cache`` shares
that cache too (files are keyed by sequence, size, offsets and a hash of the frames, so sharing is safe).
A rerun in an existing folder reuses its ``run/inpainter.pt`` (run_training skips stage 1 when it exists;
the table notes it). Changing ``--accuracy-args`` data options (``--train-frames``, ``--train-sequences``, ...)
for an existing ``--out`` does NOT regenerate the data: use a new ``--out``. The 2026-11-26 tables
(``benchmarks/ablation.md``) trained on 16 scenes, accuracy.py's default then; it is 48 now, so
``--accuracy-args "--train-sequences 16"`` reproduces those rows.

Results: accuracy.py appends one JSON line per run to ``results.jsonl`` next to it. After the runs this
script reads the lines whose ``overrides`` equal the ones it passed (for runs made now: the lines appended
during that run; otherwise the last matching line) and prints a markdown table (variant, seed, J, F,
mAP@0.5, train minutes), plus the mean over seeds when there are several, to stdout and to ``--table``
(written atomically).

Variants (paper reference -> overrides):

- ``defaults``: the cpu preset as is (exhaustive evaluation of all cells, temporal background, ...).
- ``importance`` (fig. 11f, the paper's sampling): ``sampling.method=importance``.
- ``uniform`` (fig. 11a): ``sampling.method=uniform``.
- ``gumbel`` (fig. 11e, Gumbel-softmax, temperature ``sampling.gumbel_temperature`` = 0.1):
  ``sampling.method=gumbel``.
- ``joint`` (fig. 11b, no disentangled gradients): ``sampling.disentangled=false``.
- ``bg_only`` (fig. 11c, "only L_bg"): ``loss.w_fg=0 loss.w_perceptual=0 loss.w_v=0``. The cpu preset's
  terms beyond the paper (``loss.w_box_fit``, ``loss.w_mask_bg``, ``loss.w_scale_reg``) stay on; the opt-in
  variant ``bg_only_strict`` (run it with ``--only``) also sets ``loss.w_box_fit=0 loss.w_mask_bg=0``.
- ``regression`` (fig. 11d, single-box direct regression): ``sampling.method=regression``.
- ``prior_none`` (table 3, no mask prior): ``loss.w_v=0``; the L_v prior is the default.
- ``prior_l1`` / ``prior_l2`` (table 3, an L1 / L2 penalty on the mask instead of L_v, same weight
  ``loss.w_v``): ``loss.mask_prior=l1`` / ``loss.mask_prior=l2``.
- ``scale_0.2_0.8`` / ``scale_0.1_0.6`` (table 4, box-size range b): ``detector.scale_range=[...]``
  (the cpu preset's own range is [0.1, 0.9]).
- ``ramp_target`` (beyond the paper): the mask term's target is the ramp of the background error instead of the
  cpu preset's GrabCut target (``loss.mask_target=ramp``).
- ``paper_inpainter`` (the paper's U-Net inpainter instead of the temporal background):
  ``data.background=inpainter sampling.method=importance``.

Opt-in variants (not in the default list; select them with ``--only``): ``bg_only_strict`` (above),
``tau_0.0005`` / ``tau_0.001`` (table 4's other L_v targets: ``loss.tau``; the default is 0.005) and ``flow``
(section 3.5, L_bg on the stabilised optical flow as well: ``data.flow=true``).

Not implemented (the config has no switch for it):

- table 3's ImageNet versus self-supervised initialisation: ``train.pretrained=imagenet`` needs a download
  (offline it falls back to random weights, i.e. the cpu preset's ``none``), and there are no
  self-supervised weights.

Smoke test (seconds; writes results.jsonl next to a copy of accuracy.py so the real file is untouched; the copy
imports machine.py from its own folder):

    mkdir -p /tmp/abl && cp benchmarks/accuracy.py benchmarks/machine.py /tmp/abl/
    python benchmarks/ablation.py --out /tmp/abl/out --only importance --minutes 0 --accuracy /tmp/abl/accuracy.py \\
        --table /tmp/abl/ablation.md \\
        --accuracy-args "--train-sequences 2 --test-sequences 1 --train-frames 8 --test-frames 8" \\
        --extra "train.steps=3 data.size=[64,64] detector.input_size=[64,64] segmenter.crop_size=32"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from inpaintseg.io import atomic_write_text

HERE = Path(__file__).resolve().parent

VARIANTS: dict[str, list[str]] = {
    "defaults": [],
    "importance": ["sampling.method=importance"],
    "uniform": ["sampling.method=uniform"],
    "gumbel": ["sampling.method=gumbel"],
    "joint": ["sampling.disentangled=false"],
    "bg_only": ["loss.w_fg=0", "loss.w_perceptual=0", "loss.w_v=0"],
    "regression": ["sampling.method=regression"],
    "prior_none": ["loss.w_v=0"],
    "prior_l1": ["loss.mask_prior=l1"],
    "prior_l2": ["loss.mask_prior=l2"],
    "scale_0.2_0.8": ["detector.scale_range=[0.2,0.8]"],
    "scale_0.1_0.6": ["detector.scale_range=[0.1,0.6]"],
    "paper_inpainter": ["data.background=inpainter", "sampling.method=importance"],
    "ramp_target": ["loss.mask_target=ramp"],
}
"""The default list, in run order."""

OPT_IN: dict[str, list[str]] = {
    "bg_only_strict": ["loss.w_fg=0", "loss.w_perceptual=0", "loss.w_v=0", "loss.w_box_fit=0", "loss.w_mask_bg=0"],
    "tau_0.0005": ["loss.tau=0.0005"],
    "tau_0.001": ["loss.tau=0.001"],
    "flow": ["data.flow=true"],
}
"""Variants run only when named in ``--only``."""


def run_overrides(variant: str, seed: int, minutes: float, extra: list[str]) -> list[str]:
    """The overrides passed to accuracy.py for one run (also the key that finds its result line)."""
    # the paper's ablations are without flow: the cpu preset's flow (on by default) is turned off for every
    # variant; the opt-in ``flow`` variant turns it on again. Every variant trains from random weights: the shipped
    # ones (the preset's train.init) were trained with the full objective
    return [f"train.minutes={minutes:g}", f"train.seed={seed}", "data.flow=false", "train.init=none",
            *{**VARIANTS, **OPT_IN}[variant], *extra]


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / f"{variant}_s{seed}"


def prepare_folder(out: Path, folder: Path) -> None:
    """Create ``folder`` with ``data -> out/data`` and ``run/cache -> out/cache`` (absolute symlinks), so all
    runs share one synthetic data set and one temporal-background cache."""
    for shared in (out / "data", out / "cache"):
        shared.mkdir(parents=True, exist_ok=True)
    (folder / "run").mkdir(parents=True, exist_ok=True)
    for link, target in ((folder / "data", out / "data"), (folder / "run" / "cache", out / "cache")):
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.exists() or link.is_symlink():
            raise SystemExit(f"{link}: exists and is not a symlink to {target}; remove it or use another --out")
        link.symlink_to(target.resolve(), target_is_directory=True)


def command(accuracy: Path, folder: Path, accuracy_args: list[str], overrides: list[str]) -> list[str]:
    return [sys.executable, str(accuracy), "synthetic", "--out", str(folder), *accuracy_args, *overrides]


def read_results(path: Path) -> list[dict]:
    """The JSON lines of ``path`` (an unreadable line is skipped with a warning; a missing file is empty)."""
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}:{n}: not JSON, skipped", file=sys.stderr)
    return rows


def find_result(rows: list[dict], overrides: list[str]) -> dict | None:
    """The last synthetic-benchmark record whose overrides equal ``overrides``."""
    for row in reversed(rows):
        if row.get("dataset") == "synthetic" and row.get("overrides") == overrides:
            return row
    return None


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def make_table(entries: list[tuple[str, int, dict | None, str]], header: str) -> str:
    """Markdown: one row per (variant, seed, record or None, status), then means over seeds if several."""
    lines = [header, "", "| variant | seed | J | F | mAP@0.5 | train min | note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for variant, seed, rec, status in entries:
        if rec is None:
            lines.append(f"| {variant} | {seed} | - | - | - | - | {status} |")
        else:
            lines.append(f"| {variant} | {seed} | {fmt(rec['J'])} | {fmt(rec['F'])} | {fmt(rec['mAP50'])} | "
                         f"{rec['train_s'] / 60:.1f} | {status} |")
    seeds = {seed for _, seed, _, _ in entries}
    if len(seeds) > 1:
        lines += ["", "Mean (population std) over the seeds that finished:", "",
                  "| variant | runs | J | F | mAP@0.5 |", "| --- | --- | --- | --- | --- |"]
        for variant in dict.fromkeys(v for v, _, _, _ in entries):
            recs = [rec for v, _, rec, _ in entries if v == variant and rec is not None]
            if not recs:
                lines.append(f"| {variant} | 0 | - | - | - |")
                continue
            cells = []
            for key in ("J", "F", "mAP50"):
                values = [r[key] for r in recs]
                cells.append(f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}")
            lines.append(f"| {variant} | {len(recs)} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def parse_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="one subfolder per variant and seed")
    ap.add_argument("--minutes", type=float, default=18.0, help="stage-2 budget of every run (default 18)")
    ap.add_argument("--only", default="", help="comma-separated variants (default: all non-opt-in variants)")
    ap.add_argument("--seeds", default="0", help="comma-separated train.seed values (default 0)")
    ap.add_argument("--table", type=Path, default=HERE / "ablation.md", help="markdown output (default "
                    "benchmarks/ablation.md)")
    ap.add_argument("--extra", default="", help="more key=value overrides for every run (one shell-quoted string)")
    ap.add_argument("--accuracy-args", default="", help="options passed to accuracy.py, e.g. \"--train-frames 30\"")
    ap.add_argument("--accuracy", type=Path, default=HERE / "accuracy.py",
                    help="the accuracy script (results go to results.jsonl next to it)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    ap.add_argument("--resume", action="store_true",
                    help="skip runs whose folder has eval.json and whose result line exists")
    ap.add_argument("--table-only", action="store_true", help="run nothing; build the table from results.jsonl")
    a = ap.parse_args()

    known = {**VARIANTS, **OPT_IN}
    variants = parse_list(a.only) or list(VARIANTS)
    unknown = [v for v in variants if v not in known]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    try:
        seeds = [int(s) for s in parse_list(a.seeds)]
    except ValueError:
        ap.error(f"--seeds: expected comma-separated integers, got {a.seeds!r}")
    if not seeds:
        ap.error("--seeds: no seed given")
    extra = shlex.split(a.extra)
    bad = [e for e in extra if "=" not in e]
    if bad:
        ap.error(f"--extra: not key=value: {' '.join(bad)}")
    accuracy_args = shlex.split(a.accuracy_args)
    out = a.out.resolve()
    results_path = a.accuracy.resolve().parent / "results.jsonl"

    entries: list[tuple[str, int, dict | None, str]] = []
    for variant in variants:
        for seed in seeds:
            overrides = run_overrides(variant, seed, a.minutes, extra)
            folder = run_dir(out, variant, seed)
            cmd = command(a.accuracy, folder, accuracy_args, overrides)
            if a.dry_run:
                print(shlex.join(cmd))
                continue
            if a.table_only:
                rec = find_result(read_results(results_path), overrides)
                entries.append((variant, seed, rec, "" if rec else "no result line"))
                continue
            if a.resume and (folder / "eval.json").exists():
                rec = find_result(read_results(results_path), overrides)
                if rec is not None:
                    print(f"[{variant} seed {seed}] done before, skipped", flush=True)
                    entries.append((variant, seed, rec, "earlier run"))
                    continue
            prepare_folder(out, folder)
            reused = (folder / "run" / "inpainter.pt").exists()  # run_training then skips stage 1
            if reused:
                print(f"[{variant} seed {seed}] note: {folder / 'run' / 'inpainter.pt'} exists from an earlier run "
                      "and is reused (stage 1 skipped; train min excludes it)", flush=True)
            before = len(read_results(results_path))
            print(f"[{variant} seed {seed}] {shlex.join(cmd)}", flush=True)
            t0 = time.time()
            rc = subprocess.run(cmd, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
            print(f"[{variant} seed {seed}] exit {rc} after {(time.time() - t0) / 60:.1f} min", flush=True)
            rec = find_result(read_results(results_path)[before:], overrides) if rc == 0 else None
            status = "" if rec else f"failed (exit {rc})" if rc else "no result line"
            if reused and "data.background=inpainter" in overrides:
                status = f"{status}; stage 1 reused".lstrip("; ")
            entries.append((variant, seed, rec, status))
    if a.dry_run:
        return
    header = (f"Ablation on the synthetic benchmark (cpu preset + overrides), stage-2 budget {a.minutes:g} min "
              f"per run, seeds {','.join(map(str, seeds))}; accuracy.py args: `{shlex.join(accuracy_args) or '-'}`"
              f"; extra overrides: `{shlex.join(extra) or '-'}`; results from {results_path.name}; "
              f"table written {time.strftime('%Y-%m-%d %H:%M')}.")
    table = make_table(entries, header)
    print(table, end="")
    atomic_write_text(a.table, table)


if __name__ == "__main__":
    main()
