"""Command line: a thin layer over the package's functions. ``inpaintseg --help`` lists the commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inpaintseg.config import PREDICT, REFINE_CHOICES, TemporalOptions
from inpaintseg.errors import InpaintsegError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x180, got {text!r}") from None


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"], help="hyper-parameter preset (default cpu)")
    p.add_argument("--config", type=Path, help="YAML config applied on top of the preset")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.minutes=40")


def cmd_config(a: argparse.Namespace) -> int:
    from inpaintseg.config import resolve

    print(resolve(a.preset, a.config, a.overrides).to_yaml(), end="")
    return 0


def cmd_synth(a: argparse.Namespace) -> int:
    from inpaintseg.data.synth import generate

    out = generate(a.out, camera=a.camera, sequences=a.sequences, frames=a.frames, size=a.size,
                   figures=a.figures, seed=a.seed, progress=True)
    print(f"wrote {out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from inpaintseg.evaluate import run

    run(a.pred_root, a.gt_root, a.json)
    return 0


def cmd_train(a: argparse.Namespace, inpainter_only: bool = False) -> int:
    from inpaintseg.config import resolve
    from inpaintseg.engine.pipeline import run_training

    cfg = resolve(a.preset, a.config, [*a.overrides, *(["data.flow=true"] if a.flow else [])])
    path = run_training(cfg, a.data, a.out, resume=a.resume, inpainter_only=inpainter_only)
    print(f"wrote {path}")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from inpaintseg.predict import predict_source

    out = predict_source(a.model, a.source, a.out, batch=a.batch, device=a.device, save=a.save,
                         max_objects=a.max_objects, nms_iou=a.nms_iou, min_prob=a.min_prob, refine=a.refine,
                         flip_tta=a.tta, threshold=a.threshold,
                         temporal=TemporalOptions(a.cell_weight, a.mask_weight) if a.temporal else None)
    from inpaintseg.engine.distributed import is_main

    if is_main():  # one line under torchrun, not one per process
        print(f"wrote {out}")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from inpaintseg.report import write_report

    print(f"wrote {write_report(a.run, a.pred, a.out, gt_root=a.gt, eval_json=a.eval_json)}")
    return 0


def cmd_diagnose(a: argparse.Namespace) -> int:
    from inpaintseg.diagnose import diagnose, format_report, write_json

    result = diagnose(a.run, a.data, a.frames)
    print(format_report(result), end="")
    if a.out is not None:
        print(f"wrote {write_json(result, a.out)}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from inpaintseg.export import export_model

    out = export_model(a.model, a.out, format=a.format)
    print(f"wrote {out}")
    return 0


def cmd_baseline(a: argparse.Namespace) -> int:
    from inpaintseg.baselines import run_baseline

    out = run_baseline(a.name, a.source, a.out)
    print(f"wrote {out}")
    return 0


def cmd_flow(a: argparse.Namespace) -> int:
    from inpaintseg.data.flow import write_flow_images

    out = write_flow_images(a.source, a.out, method=a.method, raft_weights=a.raft_weights,
                            size=a.size)
    print(f"wrote {out}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from inpaintseg.demo import run_demo

    run_demo(a.out, a.overrides)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inpaintseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the resolved configuration as YAML")
    _add_config_args(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("synth", help="write a synthetic benchmark in DAVIS layout")
    p.add_argument("out", type=Path)
    p.add_argument("--camera", default="ptz", choices=["static", "ptz", "handheld"])
    p.add_argument("--sequences", type=int, default=6)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", type=_size, default=(320, 180), help="WxH, default 320x180")
    p.add_argument("--figures", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("evaluate", help="J, F, recall and mAP@0.5 of predicted masks against ground truth")
    p.add_argument("pred_root", type=Path)
    p.add_argument("gt_root", type=Path)
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.set_defaults(func=cmd_evaluate)

    for name, only, text in (("train-inpainter", True, "stage 1: train the inpainting U-Net"),
                             ("train", False, "train the full model (stage 1 if needed, then stage 2)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("data", type=Path, help="images folder, DAVIS root, video file or folder of videos")
        p.add_argument("--out", type=Path, required=True, help="run folder")
        p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
        p.add_argument("--flow", action="store_true",
                       help="add the optical-flow branch (video data; same as the override data.flow=true; "
                            "already on in the cpu preset, data.flow=false turns it off)")
        _add_config_args(p)
        p.set_defaults(func=lambda a, only=only: cmd_train(a, inpainter_only=only))

    p = sub.add_parser("predict", help="predict masks and boxes with a trained model")
    p.add_argument("model", type=Path, help="RUN/model.pt, or default (the weights shipped with the package)")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batch", type=int, default=PREDICT.batch, help=f"frames per forward pass ({PREDICT.batch})")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--save", default="masks",
                   help="comma-separated outputs: masks (PNGs + detections.json), coco (coco.json), "
                        "overlay (overlay/<seq>/<frame>.jpg), video (overlay/<seq>.mp4), grid (figure-6 view); "
                        "default masks")
    p.add_argument("--max-objects", type=int, default=PREDICT.max_objects,
                   help=f"objects per frame: top-K cells after NMS ({PREDICT.max_objects})")
    p.add_argument("--nms-iou", type=float, default=PREDICT.nms_iou,
                   help=f"NMS IoU threshold between boxes ({PREDICT.nms_iou})")
    p.add_argument("--min-prob", type=float, default=PREDICT.min_prob,
                   help=f"cells below this probability are not extra objects ({PREDICT.min_prob})")
    p.add_argument("--refine", choices=REFINE_CHOICES, default=PREDICT.refine,
                   help=f"refine masks on the image's colours: grabcut seeded by the mask, crf (dense CRF, "
                        f"needs inpaintseg[crf]) or none (the segmenter's mask as it is; fastest) ({PREDICT.refine})")
    p.add_argument("--tta", action="store_true", default=PREDICT.flip_tta,
                   help="average each mask with the mirrored image's (S runs twice)")
    p.add_argument("--threshold", type=float, default=PREDICT.threshold,
                   help=f"mask threshold for COCO RLEs/outlines ({PREDICT.threshold})")
    p.add_argument("--temporal", action="store_true",
                   help="video mode: also use each frame's neighbours in its sequence (their homography-aligned "
                        "median as a background) to choose the cell and to shape the mask")
    p.add_argument("--cell-weight", type=float, default=TemporalOptions.cell_weight,
                   help="with --temporal: weight in [0, 1] of the background reward against D's probability when "
                        f"choosing the cell ({TemporalOptions.cell_weight}; 1 suits weights that never saw the video)")
    p.add_argument("--mask-weight", type=float, default=TemporalOptions.mask_weight,
                   help="with --temporal: share of the motion cue (background subtraction and flow) in each mask "
                        f"({TemporalOptions.mask_weight}; 0.7 suits weights that never saw the video)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="synthetic benchmark -> train -> predict -> evaluate, on built-in data")
    p.add_argument("--out", type=Path, default=Path("demo"))
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides on the cpu preset")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="one self-contained HTML page: metrics, learning curves, best/worst frames")
    p.add_argument("run", type=Path, help="run folder (config.yaml, train_metrics.jsonl)")
    p.add_argument("pred", type=Path, help="predictions folder (<seq>/<frame>.png)")
    p.add_argument("--out", type=Path, required=True, help="output HTML file, e.g. report.html")
    p.add_argument("--gt", type=Path, help="ground-truth DAVIS root: evaluates if there is no eval JSON; "
                                           "needed for the frame overlays")
    p.add_argument("--eval-json", type=Path, help="evaluation JSON (default PRED/../eval.json)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("diagnose", help="why a run fails or works: vital signs over time, background contrast "
                                        "and detector/mask figures against ground truth")
    p.add_argument("run", type=Path, help="run folder (model.pt, train_metrics.jsonl, config.yaml)")
    p.add_argument("data", type=Path, help="DAVIS root with Annotations (ground truth: diagnosis only)")
    p.add_argument("--out", type=Path, help="also write the result as JSON, e.g. diag.json")
    p.add_argument("--frames", type=int, default=10, help="frames per sequence, evenly spaced (default 10; 0 = all)")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("baseline", help="run a classical baseline (bgsub, mog2, saliency, center)")
    p.add_argument("name")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("flow", help="camera-stabilised optical flow of every frame, as RGB-encoded PNGs")
    p.add_argument("source", type=Path, help="images folder, DAVIS root, video file or folder of videos")
    p.add_argument("--out", type=Path, required=True, help="output folder: <seq>/<frame>.png and <seq>/valid.json")
    p.add_argument("--method", default="dis", choices=["dis", "raft"], help="dis (OpenCV, default) or raft")
    p.add_argument("--raft-weights", type=Path, help="torchvision raft_small/raft_large state dict (for --method raft)")
    p.add_argument("--size", type=_size, help="output size WxH (default: each sequence's)")
    p.set_defaults(func=cmd_flow)

    p = sub.add_parser("export", help="export the inference graph D + T + S to ONNX or TorchScript")
    p.add_argument("model", type=Path, help="RUN/model.pt")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--out", type=Path, required=True, help="output file, e.g. model.onnx")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come after options (argparse stops matching positionals at the first option)
    overrides = [e for e in extra if "=" in e and not e.startswith("-")]
    unknown = [e for e in extra if e not in overrides]
    if unknown or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    try:
        return args.func(args)
    except InpaintsegError as e:
        print(f"inpaintseg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inpaintseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
