"""Export of D + T + S to TorchScript and ONNX: parity with PyTorch, atomic writes, CLI, clear errors."""

import errno
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintseg import io as atomic_io
from inpaintseg.cli import main
from inpaintseg.config import resolve
from inpaintseg.engine.checkpoint import save_checkpoint
from inpaintseg.engine.train import model_payload
from inpaintseg.errors import InpaintsegError
from inpaintseg.export import InferenceGraph, export_model, resize_matrix
from inpaintseg.models.crop import box_to_xyxy, uncrop
from inpaintseg.models.model import build_model
from inpaintseg.predict import Predictor
from inpaintseg.weights import load_model

# Training resolution 80x48 differs from the detector's 64x64, so the detector's resize is part of the graph.
SMALL = [
    "data.size=[80,48]",
    "detector.input_size=[64,64]",
    "segmenter.crop_size=32",
    "segmenter.width=8",
    "segmenter.latent=16",
    "segmenter.global_latent=8",
    "segmenter.decoder_channels=[16,8,8,8]",
    "train.pretrained=none",
    "train.init=none",
]
H, W = 48, 80
TOL = 1e-4


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Make the untrained model non-trivial: peaked cell probabilities, off-centre boxes, BatchNorm statistics
    far from (0, 1) so that a graph left in training mode gives different numbers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head = model.detector.head[-1]
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.2)
        head.bias.copy_(torch.randn(head.bias.shape, generator=gen) * 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = resolve("cpu", overrides=SMALL)
    model = build_model(cfg)
    _randomize(model, seed=1)
    path = tmp_path_factory.mktemp("run") / "model.pt"
    save_checkpoint(path, model_payload(model, cfg, step=0))
    return path


def _inputs(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, H, W, generator=torch.Generator().manual_seed(seed))


def _reference(path, x):
    """The PyTorch outputs computed with the model's own modules (no export code)."""
    model, cfg = load_model(path)
    with torch.no_grad():
        props = model(x)
        top = props.probs.argmax(dim=1)
        box = props.boxes[torch.arange(len(x)), top]
        _, patch_mask = model.segment(x, box)
        mask = uncrop(patch_mask, box, H, W).clamp(0, 1)
    return props.probs, props.boxes, box, mask


def _assert_close(got, want, tol=TOL):
    names = ("probs", "boxes", "box", "mask")
    for name, g, w in zip(names, got, want, strict=True):
        g = torch.as_tensor(np.asarray(g))
        assert g.shape == w.shape, name
        assert torch.isfinite(g).all(), name
        err = (g - w).abs().max().item()
        assert err <= tol, f"{name}: max abs difference {err}"


def test_resize_matrix_by_hand():
    # Halving with the antialiased triangle filter (support 2 input pixels): output 0 is centred at input
    # position 1.0; inputs 0, 1, 2 (centres 0.5, 1.5, 2.5) get weights 0.75, 0.75, 0.25 -> / 1.75.
    r = resize_matrix(4, 2)
    expected = torch.tensor([[3, 3, 1, 0], [0, 1, 3, 3]], dtype=torch.float32) / 7
    assert torch.allclose(r, expected, atol=1e-6)
    assert torch.equal(resize_matrix(5, 5), torch.eye(5))
    x = _inputs(2, seed=5)
    want = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    got = resize_matrix(H, 64) @ x @ resize_matrix(W, 64).t()
    assert (got - want).abs().max().item() < 1e-5


def test_inference_graph_matches_the_model(checkpoint):
    model, cfg = load_model(checkpoint)
    graph = InferenceGraph(model, tuple(cfg.data.size))
    x = _inputs(3, seed=7)
    with torch.no_grad():
        got = graph(x)
    want = _reference(checkpoint, x)
    _assert_close(got, want)
    probs = got[0]
    assert probs.shape == (3, 16)
    border = torch.ones(4, 4, dtype=torch.bool)
    border[1:3, 1:3] = False
    assert (probs[:, border.flatten()] == 0).all()  # -inf logits on the border ring
    assert torch.allclose(probs.sum(dim=1), torch.ones(3), atol=1e-6)
    inner = probs[:, ~border.flatten()]
    assert (inner.max(1).values - inner.min(1).values).min().item() > 0.01  # not uniform: the argmax is meaningful
    assert not graph.training and not any(m.training for m in graph.modules())


def test_inference_graph_agrees_with_the_predictor(checkpoint):
    image = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)  # at training resolution
    pred = Predictor.load(checkpoint, refine="none").predict(image)
    model, cfg = load_model(checkpoint)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        probs, _, box, mask = InferenceGraph(model, tuple(cfg.data.size))(x)
    assert np.abs(pred.probabilities.ravel() - probs[0].numpy()).max() < TOL
    assert np.abs(pred.proposals[0] - box_to_xyxy(box[0], W, H).numpy()).max() < 1e-3  # pixels
    assert np.abs(pred.masks[0] - mask[0, 0].numpy()).max() < TOL


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_pytorch(checkpoint, tmp_path):
    out = export_model(checkpoint, tmp_path / "model.ts", format="torchscript")
    loaded = torch.jit.load(str(out))
    for batch, seed in ((1, 11), (4, 12)):  # traced with batch 2: other batch sizes work too
        x = _inputs(batch, seed)
        with torch.no_grad():
            got = loaded(x)
        _assert_close(got, _reference(checkpoint, x))


def test_onnx_matches_pytorch(checkpoint, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    pytest.importorskip("onnx", reason="the onnx package is not installed (pip install onnx)")
    out = export_model(checkpoint, tmp_path / "model.onnx", format="onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["probs", "boxes", "box", "mask"]
    for batch, seed in ((1, 21), (3, 22)):
        x = _inputs(batch, seed)
        got = session.run(None, {"image": x.numpy()})
        _assert_close(got, _reference(checkpoint, x))


def _temporary_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_cli_export_writes_the_file_atomically(checkpoint, tmp_path, monkeypatch, capsys):
    fmt, name = ("onnx", "model.onnx")
    try:
        import onnx  # noqa: F401
    except ImportError:
        fmt, name = ("torchscript", "model.ts")
    out = tmp_path / name
    out.write_bytes(b"previous export")
    calls = []
    real_replace = atomic_io.os.replace

    def spy_replace(src, dst):
        calls.append((str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, "replace", spy_replace)
    assert main(["export", str(checkpoint), "--format", fmt, "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    # Written through inpaintseg.io: a hidden temporary file next to the target, renamed over it.
    assert len(calls) == 1 and calls[0][1] == str(out)
    assert calls[0][0].startswith(str(tmp_path / f".{name}.")) and calls[0][0].endswith(".tmp")
    assert out.read_bytes() != b"previous export" and out.stat().st_size > 10_000
    assert _temporary_files(tmp_path) == []

    # A full disk while writing: the error propagates, the previous export stays intact, no temporary file.
    good = out.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_io.os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        main(["export", str(checkpoint), "--format", fmt, "--out", str(out)])
    assert info.value.errno == errno.ENOSPC
    assert out.read_bytes() == good
    assert _temporary_files(tmp_path) == []


def test_missing_onnx_package_gives_an_install_hint(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes "import onnx" raise ImportError
    with pytest.raises(InpaintsegError, match="pip install onnx"):
        export_model(checkpoint, tmp_path / "model.onnx", format="onnx")
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "pip install onnx" in capsys.readouterr().err
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "m.onnx").exists()


def test_bad_requests_are_refused(checkpoint, tmp_path):
    with pytest.raises(InpaintsegError, match="unknown export format"):
        export_model(checkpoint, tmp_path / "m.x", format="tflite")
    with pytest.raises(InpaintsegError, match="opset"):
        export_model(checkpoint, tmp_path / "m.onnx", format="onnx", opset=16)
    with pytest.raises(InpaintsegError, match="does not exist"):
        export_model(tmp_path / "missing.pt", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
