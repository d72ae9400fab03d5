"""Render the paper's figure-6 view (cell probabilities, chosen box, offset, mask) for a few frames.

    python benchmarks/figure.py RUN/model.pt DATA OUT.png [--frames 3] [--sequences 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from inpaintseg.data.image_io import write_png
from inpaintseg.data.sources import open_source
from inpaintseg.predict import Predictor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--sequences", type=int, default=3)
    a = ap.parse_args()
    predictor = Predictor.load(a.model)
    rows = []
    for seq in open_source(a.data).sequences[: a.sequences]:
        picks = np.linspace(0, len(seq) - 1, a.frames).round().astype(int)
        tiles = [predictor.predict(seq.read(i)).plot(seq.read(i)) for i in picks]
        rows.append(np.concatenate(tiles, axis=1))
    width = min(r.shape[1] for r in rows)
    write_png(a.out, np.concatenate([r[:, :width] for r in rows], axis=0))


if __name__ == "__main__":
    main()
