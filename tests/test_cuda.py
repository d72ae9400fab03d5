"""The method on a CUDA GPU gives what it gives on the CPU: sampling, every stage-2 loss term, training, prediction.

Skipped where torch sees no CUDA device (CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``.
"""

import copy

import numpy as np
import pytest
import torch

from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.pipeline import run_training
from inpaintseg.models.model import build_model
from inpaintseg.models.perceptual import PerceptualFeatures
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.objective import FlowInputs, RunningStats, stage2_losses
from inpaintseg.predict import Predictor
from inpaintseg.sampling import choose_cells
from tests.helpers import TINY
from tests.test_method import tiny_cfg

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def no_tf32():
    """Full float32 convolutions and products on the GPU, so CPU and GPU results compare at tight tolerances."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("method", ["importance", "uniform", "gumbel", "exhaustive", "regression"])
def test_sampling_draws_the_same_cells_on_cuda(method):
    logits = torch.randn(8, 20, generator=torch.Generator().manual_seed(0))
    valid = torch.ones(20, dtype=torch.bool)
    valid[:3] = False
    logits[:, ~valid] = -torch.inf
    probs = logits.softmax(-1)
    out = []
    for device in ("cpu", CUDA):
        cells, w = choose_cells(probs.to(device), logits.to(device), valid.to(device), method, 3, 0.01, 0.1,
                                torch.Generator().manual_seed(1))
        assert cells.device.type == torch.device(device).type
        out.append((cells.cpu(), w.cpu()))
    assert torch.equal(out[0][0], out[1][0])
    assert torch.allclose(out[0][1], out[1][1], rtol=1e-4, atol=1e-6)


def _stage2_inputs(setting: str):
    cfg = tiny_cfg()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=g)
    inputs = {"inpainter": None, "backgrounds": None, "targets": None, "flow": None}
    if setting == "inpainter":
        inputs["inpainter"] = InpaintingUNet(cfg.inpainter.channels).eval()
    else:  # a per-frame background with an object missing, GrabCut-style targets, box fit, zero-flow branch
        cfg.sampling.method = "exhaustive" if setting == "background-exhaustive" else "importance"
        cfg.sampling.samples = 1 if setting == "background-exhaustive" else 2
        cfg.loss.reward = "excess"
        cfg.loss.w_box_fit = cfg.loss.w_mask_bg = 1.0
        cfg.loss.normalize_reward = cfg.loss.baseline = True
        backgrounds = images.clone()
        backgrounds[:, :, 16:48, 24:40] = 0.5
        inputs["backgrounds"] = backgrounds
        inputs["targets"] = (torch.rand(2, 1, 64, 64, generator=g) > 0.5).float()
        inputs["flow"] = torch.rand(2, 3, 64, 64, generator=g)
    cfg.loss.w_perceptual = 1.0
    return cfg, images, inputs


def _run_stage2(model, phi, cfg, images, inputs, device, bf16=False):
    to = lambda x: None if x is None else x.to(device)  # noqa: E731
    flow = None
    if inputs["flow"] is not None:
        flow = FlowInputs(to(inputs["flow"]), torch.tensor([True, False], device=device), None, RunningStats())
    inpainter = None if inputs["inpainter"] is None else copy.deepcopy(inputs["inpainter"]).to(device)
    stats = RunningStats(reward=0.1, level=0.05, spread=0.02, count=5)
    total, terms, pictures = stage2_losses(model, inpainter, phi, to(images), to(inputs["backgrounds"]), cfg, stats,
                                           torch.Generator().manual_seed(0), bf16, flow, to(inputs["targets"]))
    total.backward()
    return total, terms, pictures


@pytest.mark.parametrize("setting", ["inpainter", "background-exhaustive", "background-importance"])
def test_stage2_losses_and_gradients_match_the_cpu(setting):
    cfg, images, inputs = _stage2_inputs(setting)
    torch.manual_seed(0)
    cpu_model = build_model(cfg).eval()  # eval: no dropout, whose random draws differ between devices
    gpu_model = copy.deepcopy(cpu_model).to(CUDA)
    phi = PerceptualFeatures("none").eval()
    _, cpu_terms, _ = _run_stage2(cpu_model, phi, cfg, images, inputs, "cpu")
    total, gpu_terms, pictures = _run_stage2(gpu_model, copy.deepcopy(phi).to(CUDA), cfg, images, inputs, CUDA)
    assert total.device.type == "cuda" and pictures["mask"].device.type == "cuda"
    assert cpu_terms.keys() == gpu_terms.keys()
    for key, value in cpu_terms.items():
        assert gpu_terms[key] == pytest.approx(value, rel=2e-3, abs=1e-5), key
    for (name, p_cpu), p_gpu in zip(cpu_model.named_parameters(), gpu_model.parameters(), strict=True):
        if p_cpu.grad is None:
            assert p_gpu.grad is None, name
            continue
        scale = p_cpu.grad.abs().max().item() + 1e-8
        # a few percent: float differences move a box edge by a pixel, which changes a hole's error there
        assert (p_gpu.grad.cpu() - p_cpu.grad).abs().max().item() < 5e-2 * scale + 1e-6, name


def test_stage2_under_bf16_autocast_is_finite():
    cfg, images, inputs = _stage2_inputs("background-importance")
    model = build_model(cfg).to(CUDA)
    total, terms, _ = _run_stage2(model, PerceptualFeatures("none").to(CUDA), cfg, images, inputs, CUDA, bf16=True)
    assert torch.isfinite(total) and all(np.isfinite(v) for v in terms.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)


@pytest.mark.parametrize("background", ["inpainter", "temporal"])
def test_training_and_prediction_on_cuda(tiny_data, tmp_path, background):
    over = [*TINY, f"data.background={background}", "data.temporal_offsets=[-2,2]", "train.device=cuda",
            "inpainter.steps=3", "train.steps=3", "train.precision=auto"]
    if background == "temporal":
        over += ["loss.w_mask_bg=1", "loss.mask_target=grabcut"]
    model_path = run_training(resolve("cpu", overrides=over), tiny_data, tmp_path / "run", progress=False)
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    on_cpu = Predictor.load(model_path, "cpu", refine="none").predict(image)
    on_gpu = Predictor.load(model_path, "cuda", refine="none").predict(image)
    assert np.allclose(on_gpu.probabilities, on_cpu.probabilities, atol=1e-4)
    assert np.allclose(on_gpu.boxes, on_cpu.boxes, atol=0.05)  # pixels
    assert np.abs(on_gpu.masks - on_cpu.masks).max() < 1e-3
