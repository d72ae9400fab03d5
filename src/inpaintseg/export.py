"""Export the inference graph D + T + S of a trained model to ONNX or TorchScript (no inpainter).

The exported graph (:class:`InferenceGraph`) takes one input and gives four outputs:

- ``image`` (B, 3, H, W) float32 RGB in [0, 1] at the training resolution ``cfg.data.size = (W, H)``
  (resize frames to it first, e.g. with ``data.image_io.resize_image``);
- ``probs`` (B, C) float32 cell probabilities, C = G_h * G_w cells in row-major order; the border ring of
  cells has logit -inf and so probability exactly 0;
- ``boxes`` (B, C, 4) float32 every cell's proposal, (cx, cy, w, h) as fractions of the image;
- ``box`` (B, 4) float32 the proposal of the most probable cell (same format);
- ``mask`` (B, 1, H, W) float32 in [0, 1]: S's mask of ``box`` resampled into image coordinates
  (T^-1, zero outside the box), exactly what :class:`inpaintseg.predict.Predictor` computes at the
  training resolution with ``refine="none"`` (the colour refinement, GrabCut or CRF, is post-processing outside
  the graph).

The batch size is dynamic in both formats; H and W are fixed.

ONNX export needs the ``onnx`` package (``pip install onnx``; running the file needs ``onnxruntime``).
The detector's antialiased bilinear resize (training resolution -> ``detector.input_size``) has no ONNX
operator in the TorchScript-based exporter, so :class:`InferenceGraph` applies it as two fixed matrix
products computed once from PyTorch's own resize; the result equals the detector's resize up to float
rounding.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inpaintseg.errors import InpaintsegError
from inpaintseg.io import atomic_open, atomic_write_bytes
from inpaintseg.models.crop import uncrop
from inpaintseg.models.model import InpaintSegModel
from inpaintseg.weights import load_model

FORMATS = ("onnx", "torchscript")
INPUT_NAMES = ["image"]
OUTPUT_NAMES = ["probs", "boxes", "box", "mask"]
MIN_OPSET = 20  # AffineGrid (T, T^-1) needs opset 20; GridSample needs 16
DEFAULT_OPSET = 20

__all__ = [
    "DEFAULT_OPSET",
    "FORMATS",
    "MIN_OPSET",
    "InferenceGraph",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "resize_matrix",
]


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32 matrix R with R @ v = 1-D antialiased bilinear resize of v (as in the detector).

    Computed by resizing the n_in unit vectors with ``F.interpolate(..., antialias=True)``; PyTorch's
    antialiased resize is separable, so resizing an (H, W) image equals R_h @ image @ R_w.T.
    """
    if n_in == n_out:
        return torch.eye(n_in, dtype=torch.float32)
    basis = torch.eye(n_in, dtype=torch.float32).view(n_in, 1, 1, n_in)  # one unit vector per batch item
    out = F.interpolate(basis, size=(1, n_out), mode="bilinear", align_corners=False, antialias=True)
    return out.view(n_in, n_out).t().contiguous()


class InferenceGraph(nn.Module):
    """D + T + S at a fixed input size, returning plain tensors (see the module docstring for shapes)."""

    def __init__(self, model: InpaintSegModel, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.width, self.height = int(size[0]), int(size[1])
        w_d, h_d = model.detector.input_size
        self.register_buffer("resize_h", resize_matrix(self.height, h_d), persistent=False)  # (H_d, H)
        self.register_buffer("resize_w_t", resize_matrix(self.width, w_d).t().contiguous(), persistent=False)
        # Inference only (BatchNorm running statistics, no dropout). The whole graph must be in eval mode:
        # torch.onnx.export restores the top module's mode recursively after exporting.
        self.eval()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B,3,H,W) in [0,1] -> probs (B,C), boxes (B,C,4), box (B,4), mask (B,1,H,W)."""
        small = torch.matmul(torch.matmul(self.resize_h, image), self.resize_w_t)  # (B,3,H_d,W_d)
        props = self.model.detector(small)
        top = props.probs.argmax(dim=1)  # (B,)
        box = torch.gather(props.boxes, 1, top.view(-1, 1, 1).expand(-1, 1, 4)).squeeze(1)  # (B,4)
        _, patch_mask = self.model.segment(image, box)
        mask = uncrop(patch_mask, box, self.height, self.width).clamp(0.0, 1.0)
        return props.probs, props.boxes, box, mask


def _example_input(graph: InferenceGraph, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, graph.height, graph.width, generator=generator)


def export_torchscript(graph: InferenceGraph, out: str | Path) -> Path:
    """Trace ``graph`` and save it with ``torch.jit.save`` to ``out`` (atomically). Load with torch.jit.load."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of torch.jit
        traced = torch.jit.trace(graph, (_example_input(graph),), check_trace=False)
        with atomic_open(out, "wb") as f:
            torch.jit.save(traced, f)
    return Path(out)


def export_onnx(graph: InferenceGraph, out: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``graph`` with ``torch.onnx.export`` (TorchScript-based exporter, dynamic batch) to ``out``,
    atomically. Raises InpaintsegError when the ``onnx`` package is missing or opset < 20."""
    if opset < MIN_OPSET:
        raise InpaintsegError(f"ONNX opset {opset} is too old: the crop T needs AffineGrid (opset >= {MIN_OPSET})")
    try:
        import onnx  # noqa: F401  (needed by torch.onnx.export)
    except ImportError:
        raise InpaintsegError(
            "ONNX export needs the onnx package: pip install onnx (and onnxruntime to run the file), "
            "or pip install 'inpaintseg[export]'"
        ) from None
    buf = io.BytesIO()
    axes = {name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice of the TorchScript-based exporter
        torch.onnx.export(
            graph,
            (_example_input(graph),),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes=axes,
        )
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)


def export_model(model_path: str | Path, out: str | Path, format: str = "onnx", opset: int = DEFAULT_OPSET) -> Path:
    """Export the trained model ``model_path`` (RUN/model.pt) to ``out`` as ``format`` ("onnx" | "torchscript").

    The file takes (B, 3, H, W) float32 in [0, 1] at the training resolution (W, H) = ``cfg.data.size``;
    see the module docstring for the outputs.
    """
    if format not in FORMATS:
        raise InpaintsegError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    model, cfg = load_model(model_path)
    graph = InferenceGraph(model, tuple(cfg.data.size))
    if format == "onnx":
        return export_onnx(graph, out, opset)
    return export_torchscript(graph, out)
