"""The two-stage training pipeline as called by the CLI: data -> (stage 1) -> stage 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from inpaintseg.config import Config, get_key, set_key
from inpaintseg.data.sources import open_source, split_sequences
from inpaintseg.engine import distributed
from inpaintseg.engine.data import (
    FrameBank,
    attach_backgrounds,
    attach_flows,
    attach_inpainted_backgrounds,
    attach_mask_targets,
    better_background,
    load_frames,
    sampled_order_share,
)
from inpaintseg.engine.train import train_model, uses_flow_inpainter
from inpaintseg.engine.train_inpainter import load_inpainter, train_inpainter
from inpaintseg.io import atomic_write_text
from inpaintseg.weights import check_init

AUTO_MIN_ALIGNED = 0.5
"""``background=auto`` uses the temporal background when at least this share of the frames' neighbours align
(a mean over the frames; ``engine/data.attach_backgrounds``)."""


def resolve_settings(cfg: Config, aligned: float | None, aligned_similar: float | None = None) -> list[dict]:
    """Settle the settings that depend on the data, in place, and return the decisions made (``key``, ``value``,
    ``was``, ``why``), in order. ``aligned``: the share of the frames' neighbours in order that align with them
    (None when no temporal background was computed); ``aligned_similar``: the same with the most similar frames
    as the neighbours (``collection``; None when not computed). The only function that changes a user's settings:

    1. ``data.background=auto``: ``temporal`` when at least ``AUTO_MIN_ALIGNED`` of the neighbours in order align,
       else ``collection`` when as many of the most similar frames align, else the paper's ``inpainter``,
       without flow (no neighbours, no flow) and with importance sampling.
    2. ``inpainted`` and ``collection`` train without the flow.
    3. The flow is not computed when nothing uses it: no flow loss (``loss.w_bg_flow=0``) and no GrabCut target.
    4. The GrabCut mask target needs a per-frame background; with the U-Net inpainter the ramp target is used.
    5. With the U-Net inpainter and trained starting weights, the learning rates are scaled by
       ``train.inpainter_lr_scale``, which is then set to 1 so that settling the settings again changes nothing."""
    decisions: list[dict] = []

    def decide(key: str, value: object, why: str) -> None:
        was = get_key(cfg, key)
        if was != value:
            set_key(cfg, key, value)
            decisions.append({"key": key, "value": value, "was": was, "why": why})

    if cfg.data.background == "auto":
        in_order = f"{aligned or 0:.0%} of the neighbours in order align with their frame"
        if aligned is not None and aligned >= AUTO_MIN_ALIGNED:
            decide("data.background", "temporal", in_order)
        elif aligned_similar is not None and aligned_similar >= AUTO_MIN_ALIGNED:
            decide("data.background", "collection", f"only {in_order}, {aligned_similar:.0%} of the most similar "
                   "frames: an unordered collection of the same scenes")
        else:
            why = (f"only {in_order} and {aligned_similar or 0:.0%} of the most similar frames: "
                   "neither a video nor a collection of the same scenes")
            decide("data.background", "inpainter", why)
            decide("data.flow", False, why)
            if cfg.sampling.method == "exhaustive":
                decide("sampling.method", "importance", "the U-Net inpainter is sampled, not run on every cell")
    if cfg.data.background == "inpainted":
        decide("data.flow", False, "data.background=inpainted trains without the optical flow")
    if cfg.data.background == "collection":
        decide("data.flow", False, "an unordered collection has no consecutive frames for the optical flow")
    grabcut = cfg.loss.w_mask_bg > 0 and cfg.loss.mask_target == "grabcut"
    per_frame_background = cfg.data.background != "inpainter"
    if cfg.loss.w_bg_flow == 0 and not (grabcut and per_frame_background):
        decide("data.flow", False, "loss.w_bg_flow=0 and no GrabCut mask target: nothing uses the flow")
    if grabcut and not per_frame_background:
        decide("loss.mask_target", "ramp", "GrabCut needs a per-frame background, which the U-Net inpainter "
               "does not give: the mask term uses the ramp target")
    scale = cfg.train.inpainter_lr_scale
    if not per_frame_background and cfg.train.init != "none" and scale != 1:
        why = (f"train.inpainter_lr_scale={scale:g}: the U-Net inpainter's rewards lead trained weights "
               f"({cfg.train.init}) away from the object, so stage 2 fine-tunes them slowly")
        decide("train.lr", cfg.train.lr * scale, why)
        decide("train.decoder_lr", cfg.train.decoder_lr * scale, why)
        decide("train.inpainter_lr_scale", 1.0, "applied to the learning rates above")
    return decisions


def prepare_data(cfg: Config, data: str | Path, run_dir: str | Path, progress: bool = True) -> FrameBank:
    """Open ``data``, keep the training sequences (``data.val_fraction`` held out, split by sequence, the
    split written to ``run_dir/split.json``), read frames at ``data.size``, attach what the settings ask for
    (backgrounds, flows, GrabCut targets). The data-dependent settings are settled by :func:`resolve_settings`,
    printed and written to ``run_dir/decisions.json``."""
    run_dir = Path(run_dir)
    source = open_source(data, on_error=cfg.data.on_error)
    names = [s.name for s in source.sequences]
    train_names, val_names = split_sequences(names, cfg.data.val_fraction, cfg.train.seed)
    if distributed.is_main():
        atomic_write_text(run_dir / "split.json", json.dumps({"train": train_names, "val": val_names}, indent=1))
    needs_bg = cfg.data.background not in ("inpainter", "inpainted")  # inpainted: after stage 1
    bank, per_seq = load_frames(source.subset(train_names), tuple(cfg.data.size), cfg.data.max_frames, progress,
                                keep=needs_bg or cfg.data.flow)
    if source.skipped:
        path, problem = source.skipped[0]
        print(f"skipped {len(source.skipped)} unreadable frame(s); first: {path}: {problem}")
    aligned = aligned_similar = None
    auto = cfg.data.background == "auto"
    if auto:  # frames out of order skip the temporal backgrounds: the collection's are computed instead
        aligned = sampled_order_share(per_seq, cfg.data.temporal_offsets)
    if needs_bg and not (auto and aligned < AUTO_MIN_ALIGNED):
        mode = "temporal" if cfg.data.background in ("auto", "both") else cfg.data.background
        with distributed.main_first():  # rank 0 computes and caches the backgrounds; the others then load them
            aligned = attach_backgrounds(bank, per_seq, mode, run_dir / "cache", cfg.data.temporal_offsets,
                                         progress and distributed.is_main())
    if auto and aligned < AUTO_MIN_ALIGNED:  # not in order: an unordered collection of the same scenes?
        with distributed.main_first():
            aligned_similar = attach_backgrounds(bank, per_seq, "collection", run_dir / "cache",
                                                 cfg.data.temporal_offsets, progress and distributed.is_main())
    decisions = resolve_settings(cfg, aligned, aligned_similar)
    if distributed.is_main():
        for d in decisions:
            print(f"{d['key']}={d['value']} (was {d['was']}): {d['why']}")
        atomic_write_text(run_dir / "decisions.json", json.dumps(decisions, indent=1))
    if cfg.data.background == "inpainter":
        bank.backgrounds = None
    if cfg.data.flow:
        with distributed.main_first():  # as above: rank 0 computes and caches the flows
            valid = attach_flows(bank, per_seq, run_dir / "cache", progress and distributed.is_main())
        if distributed.is_main():
            print(f"optical flow: {valid:.0%} of the frames have a stabilised flow (the others get no flow "
                  "loss and no flow in their mask target)")
    grabcut = cfg.loss.w_mask_bg > 0 and cfg.loss.mask_target == "grabcut"
    if grabcut and bank.backgrounds is not None and cfg.data.background != "both":  # both, inpainted: after stage 1
        attach_grabcut_targets(cfg, bank, progress)
    return bank


def attach_grabcut_targets(cfg: Config, bank: FrameBank, progress: bool = True) -> None:
    """The GrabCut mask targets of ``loss.mask_target=grabcut`` for a bank with backgrounds (and flows, which then
    join the seeds)."""
    share = attach_mask_targets(bank, progress and distributed.is_main())
    if distributed.is_main():
        seeds = "the background error and the flow" if cfg.data.flow else "the background error"
        print(f"mask targets (GrabCut seeded by {seeds}): {share:.1%} of the pixels are foreground")


def attach_inpainted(cfg: Config, bank: FrameBank, run_dir: Path, progress: bool = True) -> None:
    """``data.background=inpainted``: each frame's background from the trained inpainter (data/inpainted.py);
    ``both``: per pixel, whichever of the temporal and the inpainted background explains the frame better. Then
    the GrabCut mask targets when the mask term asks for them."""
    temporal = bank.backgrounds
    attach_inpainted_backgrounds(bank, load_inpainter(run_dir / "inpainter.pt"),
                                 progress=progress and distributed.is_main())
    if cfg.data.background == "both":
        bank.backgrounds = better_background(bank.frames, temporal, bank.backgrounds)
    if cfg.loss.w_mask_bg > 0 and cfg.loss.mask_target == "grabcut":  # prepare_data kept grabcut for these
        attach_grabcut_targets(cfg, bank, progress)


def train_inpainters(cfg: Config, data: str | Path, run_dir: str | Path, resume: bool = False,
                     progress: bool = True) -> Path:
    """Stage 1 alone (``inpaintseg train-inpainter``): the inpainter I, and the flow inpainter I_f when stage 2
    would use it (:func:`uses_flow_inpainter`). Reads the frames
    (and their flows for I_f) and nothing else: no backgrounds, no mask targets. Returns ``run_dir/inpainter.pt``."""
    cfg = copy.deepcopy(cfg)
    with_flow = uses_flow_inpainter(cfg)
    cfg.data.background, cfg.data.flow, cfg.loss.w_mask_bg = "inpainter", with_flow, 0.0
    bank = prepare_data(cfg, data, run_dir, progress)
    if distributed.is_main():
        cfg.save(run_dir / "config.yaml")
    path = train_inpainter(cfg, bank, run_dir, resume=resume, progress=progress)
    distributed.barrier()  # rank 0 has written inpainter.pt
    if with_flow:
        train_inpainter(cfg, bank.flow_bank(), run_dir, resume=resume, progress=progress, name="flow_inpainter")
        distributed.barrier()
    return path


def run_training(
    cfg: Config, data: str | Path, run_dir: str | Path, resume: bool = False, inpainter_only: bool = False,
    progress: bool = True,
) -> Path:
    """Stage 1 when needed (background=inpainter and no ``run_dir/inpainter.pt``), then stage 2. With
    ``inpainter_only``, stage 1 alone (:func:`train_inpainters`)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    distributed.setup()  # no-op in a single process; under torchrun, one process per device
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    start = check_init(cfg)  # a mismatch fails here, before minutes of data preparation
    if start and distributed.is_main():
        print(start)
    if inpainter_only:
        return train_inpainters(cfg, data, run_dir, resume, progress)
    bank = prepare_data(cfg, data, run_dir, progress)
    if distributed.is_main():
        cfg.save(run_dir / "config.yaml")  # as resolved (background=auto becomes temporal or inpainter)
    distributed.barrier()
    if cfg.data.background in ("inpainter", "inpainted", "both") and not (run_dir / "inpainter.pt").exists():
        train_inpainter(cfg, bank, run_dir, resume=resume, progress=progress)
        distributed.barrier()  # rank 0 has written inpainter.pt
    if cfg.data.background in ("inpainted", "both"):
        attach_inpainted(cfg, bank, run_dir, progress)
    # the flow inpainter I_f, when the flow's background is inpainted (section 3.5)
    if uses_flow_inpainter(cfg) and not (run_dir / "flow_inpainter.pt").exists():
        train_inpainter(cfg, bank.flow_bank(), run_dir, resume=resume, progress=progress, name="flow_inpainter")
        distributed.barrier()
    return train_model(cfg, bank, run_dir, resume=resume, progress=progress)
