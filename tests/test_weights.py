"""Starting weights: ``train.init`` from a model.pt or a bundle, bundles, the shipped ``default``, and the
per-cell reward baseline."""

import numpy as np
import pytest
import torch

from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.pipeline import run_training
from inpaintseg.errors import ConfigError, InpaintsegError
from inpaintseg.losses import background_loss
from inpaintseg.objective import RunningStats
from inpaintseg.predict import Predictor
from inpaintseg.weights import model_path, write_bundle
from tests.helpers import TINY

FROZEN = ["train.lr=0", "train.decoder_lr=0", "inpainter.lr=0", "inpainter.steps=1", "train.steps=1"]
"""One step at learning rate 0: the parameters stay what the run started from."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained 3 + 3 steps with the inpainter background: (data, run folder)."""
    root = tmp_path_factory.mktemp("weights")
    data = generate(root / "data", camera="ptz", sequences=2, frames=6, size=(96, 64), seed=5)
    cfg = resolve("cpu", overrides=[*TINY, "inpainter.steps=3", "train.steps=3"])
    run_training(cfg, data, root / "run", progress=False)
    return data, root / "run"


def _parameters(state: dict, names: list[str]) -> dict:
    return {k: state[k] for k in names}


def _param_names(path) -> list[str]:
    from inpaintseg.weights import load_model

    model, _ = load_model(path)
    return [k for k, _ in model.named_parameters()]


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_init_starts_d_s_and_the_inpainter_from_a_model(trained, tmp_path):
    data, run = trained
    names = _param_names(run / "model.pt")
    saved = _parameters(load_checkpoint(run / "model.pt")["model"], names)
    saved_inpainter = load_checkpoint(run / "inpainter.pt")["inpainter"]
    for init, expect_same in ((str(run / "model.pt"), True), ("none", False)):
        out = tmp_path / init.replace("/", "_")
        cfg = resolve("cpu", overrides=[*TINY, *FROZEN, f"train.init={init}"])
        run_training(cfg, data, out, progress=False)
        got = _parameters(load_checkpoint(out / "model.pt")["model"], names)
        got_inpainter = load_checkpoint(out / "inpainter.pt")["inpainter"]
        weights = [k for k in saved_inpainter if k.endswith("weight")]
        assert _same(saved, got) == expect_same
        assert _same({k: saved_inpainter[k] for k in weights}, got_inpainter) == expect_same


def test_bundle_predicts_like_its_model_and_initialises_the_inpainter(trained, tmp_path):
    data, run = trained
    bundle = write_bundle(run / "model.pt", run / "inpainter.pt", None, out=tmp_path / "bundle.pt",
                          info={"note": "test"})
    payload = load_checkpoint(bundle, "model")
    assert "optimizer" not in payload and "flow_inpainter" not in payload and payload["info"] == {"note": "test"}
    image = np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    a = Predictor.load(run / "model.pt", refine="none").predict(image)
    b = Predictor.load(bundle, refine="none").predict(image)
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.boxes, b.boxes)
    out = tmp_path / "from_bundle"
    run_training(resolve("cpu", overrides=[*TINY, *FROZEN, f"train.init={bundle}"]), data, out, progress=False)
    got = load_checkpoint(out / "inpainter.pt")["inpainter"]
    saved = load_checkpoint(run / "inpainter.pt")["inpainter"]
    assert all(torch.equal(saved[k], got[k]) for k in saved if k.endswith("weight"))


def test_init_with_other_network_sizes_names_the_setting(trained, tmp_path):
    data, run = trained
    cfg = resolve("cpu", overrides=[*TINY, *FROZEN, f"train.init={run / 'model.pt'}", "segmenter.width=16",
                                    "data.background=known"])
    with pytest.raises(ConfigError, match="segmenter.width: 8 in the weights, 16 here"):
        run_training(cfg, data, tmp_path / "other", progress=False)


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(InpaintsegError, match="does not exist"):
        Predictor.load(tmp_path / "nothing.pt")
    assert model_path(tmp_path / "x.pt") == tmp_path / "x.pt"


def test_cell_baseline_removes_what_a_cell_always_scores():
    """Cell 0 (a frame border, say) always scores 3; cell 1 usually 1, but 2 in the last image. With each
    cell's own running mean subtracted, L_bg raises cell 1 there; with one baseline for all cells, cell 0."""
    stats = RunningStats()
    cells = torch.tensor([[0, 1]])
    for _ in range(50):
        stats.cell_baseline(cells, torch.tensor([[3.0, 1.0]]), n_cells=2)
    rewards = torch.tensor([[3.0, 2.0]])
    baseline = stats.cell_baseline(cells, rewards, n_cells=2)
    assert torch.allclose(baseline, torch.tensor([[3.0, 1.0]]))
    for base, winner in ((baseline, 1), (rewards.mean().item(), 0)):
        logits = torch.zeros(1, 2, requires_grad=True)
        background_loss(logits.softmax(1), rewards, base).backward()
        assert logits.grad[0, winner] < 0 < logits.grad[0, 1 - winner]


def test_cell_baseline_trains_and_resumes(trained, tmp_path):
    data, _ = trained
    over = [*TINY, "data.background=known", "loss.cell_baseline=true", "train.steps=2"]
    run_training(resolve("cpu", overrides=over), data, tmp_path / "run", progress=False)
    table = load_checkpoint(tmp_path / "run" / "train_last.pt")["stats"]["cell_reward"]
    assert len(table) == 16 and sum(np.isfinite(table)) > 0  # 4x4 grid; inner cells chosen so far have a mean


def _pretrain_module():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import pretrain
    finally:
        sys.path.pop(0)
    return pretrain


def test_pretrain_model_phase_writes_what_training_writes(trained, tmp_path):
    """``benchmarks/pretrain.py model`` rebuilds stage 2's model.pt (the weight average) from its resumable
    checkpoint alone, so that pretraining continued on another machine can be bundled without running stage 2."""
    import shutil

    pretrain = _pretrain_module()
    _, run = trained
    (tmp_path / "stage2").mkdir()
    shutil.copy2(run / "train_last.pt", tmp_path / "stage2" / "train_last.pt")
    written = load_checkpoint(pretrain.stage2_model(tmp_path))
    expected = load_checkpoint(run / "model.pt")
    assert "ema" in load_checkpoint(run / "train_last.pt")  # the averaged weights, not the last ones, are taken
    assert written["step"] == expected["step"] and written["model"].keys() == expected["model"].keys()
    assert _same(written["model"], expected["model"])


def test_bundle_takes_the_further_trained_inpainter(trained, tmp_path):
    """A phase stopped early and resumed with a larger budget leaves its earlier final ``inpainter.pt`` behind;
    ``bundle`` takes whichever of it and the resumable checkpoint has trained further."""
    from inpaintseg.engine.checkpoint import save_checkpoint

    pretrain = _pretrain_module()
    _, run = trained
    phase = tmp_path / "inpainter"
    phase.mkdir()
    payload = load_checkpoint(run / "inpainter.pt")
    for name, step in (("inpainter.pt", 5), ("inpainter_last.pt", 9)):
        save_checkpoint(phase / name, {**payload, "step": step})
    assert pretrain.furthest(tmp_path, "inpainter", "inpainter") == phase / "inpainter_last.pt"
    save_checkpoint(phase / "inpainter.pt", {**payload, "step": 9})  # the finished run's own final file
    assert pretrain.furthest(tmp_path, "inpainter", "inpainter") == phase / "inpainter.pt"


def test_shipped_default_is_small_and_loads_weights_only():
    path = model_path("default")
    assert path.stat().st_size <= 50 * 2**20  # the package's size limit for shipped weights
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert "optimizer" not in payload and payload["inpainter"]["state"] and payload["flow_inpainter"]["state"]
    assert "CC BY-NC" in payload["info"]["licence"]  # trained on DAVIS frames (docs/model_card.md)


def test_default_starts_the_flow_inpainter_too():
    """``train.init=default`` with the paper's path and flow starts I_f from the shipped one, not from random
    weights."""
    from inpaintseg.engine.train_inpainter import build_inpainter
    from inpaintseg.weights import init_inpainter

    cfg = resolve("cpu", overrides=["data.background=inpainter", "data.flow=true"])
    net = build_inpainter(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert init_inpainter(net, cfg, "flow_inpainter")
    shipped = torch.load(model_path("default"), map_location="cpu", weights_only=True)["flow_inpainter"]["state"]
    assert _same(net.state_dict(), shipped) and not _same(net.state_dict(), before)


def test_shipped_default_finds_the_subject_without_training():
    """The shipped weights are trained: on the two real sequences in tests/data (three frames each, of sequences
    seen in pretraining; one image at a time, no refinement), their masks' mean J on one sequence at least is
    far above what a centred box scores on either (``inpaintseg baseline center``)."""
    from pathlib import Path

    from inpaintseg.data.image_io import read_image, read_mask
    from inpaintseg.metrics import jaccard

    root = Path(__file__).parent / "data" / "davis_mini"
    predictor = Predictor.load("default", refine="none")
    scores = {}
    for gt_path in sorted((root / "Annotations").glob("*/*.png")):
        image = read_image(root / "JPEGImages" / gt_path.parent.name / f"{gt_path.stem}.jpg")
        gt = read_mask(gt_path) > 0
        scores[gt_path.parent.name, gt_path.stem] = jaccard(predictor.predict(image).mask >= 0.5, gt)
    assert max(np.mean([j for (seq, _), j in scores.items() if seq == s]) for s in ("bear", "hike")) > 0.6, scores


def test_check_init_names_the_start_and_the_licence_before_data_is_read(trained, tmp_path):
    from inpaintseg.weights import check_init

    assert check_init(resolve("cpu", overrides=["train.init=none"])) is None
    line = check_init(resolve("cpu", overrides=["train.init=default"]))
    assert "default.pt" in line and "CC BY-NC" in line
    _, run = trained
    bad = resolve("cpu", overrides=[*TINY, f"train.init={run / 'model.pt'}", "segmenter.width=16"])
    with pytest.raises(ConfigError, match="segmenter.width"):
        run_training(bad, tmp_path / "no such data", tmp_path / "run", progress=False)  # fails before reading data
