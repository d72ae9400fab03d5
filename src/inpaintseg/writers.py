"""The outputs ``predict_source`` writes as frames come: masks, detections, COCO, overlays, videos, grids."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from inpaintseg.data.image_io import write_jpeg
from inpaintseg.data.sources import Frame, Sequence
from inpaintseg.engine import distributed
from inpaintseg.errors import ConfigError
from inpaintseg.io import atomic_write_text
from inpaintseg.results import COCO_CATEGORY, Prediction
from inpaintseg.video import DEFAULT_FPS, VideoWriter, concat_videos

SAVE_CHOICES = ("masks", "coco", "overlay", "video", "grid")


def parse_save(save: str | Iterable[str]) -> tuple[str, ...]:
    """``"masks,coco"`` or ``["masks", "coco"]`` -> ``("masks", "coco")``; ConfigError for unknown kinds."""
    items = save.split(",") if isinstance(save, str) else list(save)
    kinds = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    unknown = [k for k in kinds if k not in SAVE_CHOICES]
    if unknown or not kinds:
        raise ConfigError(f"--save takes a comma-separated list of {', '.join(SAVE_CHOICES)}; got {save!r}")
    return kinds


class OutputWriters:
    """Writes the requested outputs frame by frame; JSON results are kept (compact) until ``finish``."""

    def __init__(self, out: Path, save: tuple[str, ...], threshold: float, sequences: dict[str, Sequence],
                 rank: int, world: int, split: bool) -> None:
        self.out, self.save, self.threshold = out, save, threshold
        self.sequences, self.rank, self.world, self.split = sequences, rank, world, split
        self.detections: list[dict] = []
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.video: VideoWriter | None = None
        self.video_sequence: str | None = None

    def add(self, frame: Frame, pred: Prediction) -> None:
        seq, name = frame.sequence, frame.name
        if "masks" in self.save:
            pred.save(self.out / seq, name)
            for box, score in zip(pred.boxes, pred.scores, strict=True):
                x0, y0, x1, y1 = (float(v) for v in box)
                self.detections.append({"sequence": seq, "frame": name, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                        "score": float(score)})
        if "coco" in self.save:
            image_id = len(self.images) + 1  # renumbered when the ranks' files are merged
            h, w = frame.image.shape[:2]
            self.images.append({"id": image_id, "file_name": f"{seq}/{name}", "width": w, "height": h,
                                "sequence": seq, "frame": name})
            self.annotations += pred.to_coco(image_id, self.threshold, first_id=len(self.annotations) + 1)
        overlay = None
        if "overlay" in self.save or "video" in self.save:
            from inpaintseg.viz import overlay_prediction

            overlay = overlay_prediction(frame.image, pred, self.threshold)
        if "overlay" in self.save:
            write_jpeg(self.out / "overlay" / seq / f"{name}.jpg", overlay)
        if "video" in self.save:
            if self.video_sequence != seq:
                self.close_video()
                self.video = VideoWriter(self._video_path(seq, self.rank if self.split else None),
                                         self.sequences[seq].fps or DEFAULT_FPS)
                self.video_sequence = seq
            self.video.write(overlay)
        if "grid" in self.save:
            from inpaintseg.viz import plot_prediction

            write_jpeg(self.out / "grid" / seq / f"{name}.jpg", plot_prediction(frame.image, pred))

    def _video_path(self, seq: str, part: int | None) -> Path:
        suffix = ".mp4" if part is None else f".rank{part}.mp4"
        return self.out / "overlay" / f"{seq}{suffix}"

    def close_video(self) -> None:
        if self.video is not None:
            self.video.close()
            self.video = None
            self.video_sequence = None

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
            self.video = None

    def finish(self) -> None:
        """Close the video; write the JSON files (merged over ranks by rank 0 under torchrun)."""
        self.close_video()
        results = {"detections": self.detections, "coco": {"images": self.images, "annotations": self.annotations}}
        if self.world == 1:
            self._write_merged([results])
            return
        atomic_write_text(self.out / f"predict.rank{self.rank}.json", json.dumps(results))
        distributed.barrier()
        if self.rank == 0:
            parts = [self.out / f"predict.rank{r}.json" for r in range(self.world)]
            self._write_merged([json.loads(p.read_text(encoding="utf-8")) for p in parts])
            for p in parts:
                p.unlink()
            if "video" in self.save and self.split:
                for seq in self.sequences:
                    videos = [self._video_path(seq, r) for r in range(self.world)]
                    videos = [v for v in videos if v.exists()]
                    if videos:
                        concat_videos(videos, self._video_path(seq, None))
                        for v in videos:
                            v.unlink()
        distributed.barrier()

    def _write_merged(self, ranks: list[dict]) -> None:
        """Concatenate the ranks' results in rank order, put them in source order, renumber COCO ids."""
        order = {name: k for k, name in enumerate(self.sequences)}
        if "masks" in self.save:
            detections = [d for r in ranks for d in r["detections"]]
            detections.sort(key=lambda d: order[d["sequence"]])  # stable: frame order within a sequence
            atomic_write_text(self.out / "detections.json", json.dumps(detections))
        if "coco" in self.save:
            images = [(r, im) for r, part in enumerate(ranks) for im in part["coco"]["images"]]
            images.sort(key=lambda item: order[item[1]["sequence"]])
            new_id = {(r, im["id"]): k + 1 for k, (r, im) in enumerate(images)}
            annotations = [(new_id[(r, a["image_id"])], a) for r, part in enumerate(ranks)
                           for a in part["coco"]["annotations"]]
            annotations.sort(key=lambda item: item[0])
            coco = {
                "info": {"description": "inpaintseg predictions"},
                "images": [{**im, "id": new_id[(r, im["id"])]} for r, im in images],
                "annotations": [{**a, "id": k + 1, "image_id": i} for k, (i, a) in enumerate(annotations)],
                "categories": [COCO_CATEGORY],
            }
            atomic_write_text(self.out / "coco.json", json.dumps(coco))
