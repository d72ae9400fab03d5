"""End-to-end training on tiny data: both stages, checkpoints, exact resume, predictor, CLI."""

import json

import numpy as np
import pytest
import torch

from inpaintseg.cli import main
from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.pipeline import resolve_settings, run_training
from inpaintseg.errors import InpaintsegError
from inpaintseg.evaluate import evaluate
from inpaintseg.predict import Predictor
from tests.helpers import TINY


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate(root, camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)


def _weights(path):
    return load_checkpoint(path)["model"]


def test_train_predict_evaluate(tiny_data, tmp_path):
    cfg = resolve("cpu", overrides=[*TINY, "inpainter.steps=3", "train.steps=3"])
    model_path = run_training(cfg, tiny_data, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ("inpainter.pt", "model.pt", "config.yaml", "train_metrics.jsonl", "inpainter_metrics.jsonl"):
        assert (run / name).exists(), name
    payload = torch.load(model_path, weights_only=True)  # plain dict, no pickled objects
    assert payload["format"] == "inpaintseg-model" and payload["step"] == 3
    predictor = Predictor.load(model_path)
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    pred = predictor.predict(image)
    assert pred.masks.shape == (1, 50, 70) and pred.boxes.shape == (1, 4)
    assert 0 <= pred.masks.min() and pred.masks.max() <= 1
    assert pred.probabilities.shape == (4, 4) and abs(pred.probabilities.sum() - 1) < 1e-5
    assert pred.probabilities[0].sum() == 0  # border ring
    picture = pred.plot(image)
    assert picture.shape == image.shape and picture.dtype == np.uint8 and not np.array_equal(picture, image)
    out = tmp_path / "pred"
    assert main(["predict", str(model_path), str(tiny_data), "--out", str(out)]) == 0
    result = evaluate(out, tiny_data)
    assert result["frames"] == 12 and result["missing"] == 0 and result["mAP50"] is not None


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_continues_exactly(tiny_data, tmp_path, ema):
    over = [*TINY, "data.background=known", "train.steps=4", f"train.ema={ema}"]
    run_training(resolve("cpu", overrides=over), tiny_data, tmp_path / "a", progress=False)
    half = [*TINY, "data.background=known", "train.steps=2", f"train.ema={ema}"]
    run_training(resolve("cpu", overrides=half), tiny_data, tmp_path / "b", progress=False)
    run_training(resolve("cpu", overrides=over), tiny_data, tmp_path / "b", resume=True, progress=False)
    a, b = _weights(tmp_path / "a" / "model.pt"), _weights(tmp_path / "b" / "model.pt")
    assert load_checkpoint(tmp_path / "b" / "model.pt")["step"] == 4
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_counts_the_time_already_spent(tiny_data, tmp_path):
    """The time budget covers the whole run: a resumed run whose minutes are already spent trains no further
    steps, in stage 1 and in stage 2, however many steps it would still be allowed."""
    run = tmp_path / "run"
    first = [*TINY, "inpainter.steps=2", "train.steps=2"]
    run_training(resolve("cpu", overrides=first), tiny_data, run, progress=False)
    spent = {name: load_checkpoint(run / f"{name}_last.pt")["elapsed_s"] for name in ("inpainter", "train")}
    assert all(s > 0 for s in spent.values())
    (run / "inpainter.pt").unlink()  # so that stage 1 resumes too
    more = [*TINY, "inpainter.steps=50", "train.steps=50",
            f"inpainter.minutes={spent['inpainter'] / 60}", f"train.minutes={spent['train'] / 60}"]
    run_training(resolve("cpu", overrides=more), tiny_data, run, resume=True, progress=False)
    assert load_checkpoint(run / "inpainter.pt")["step"] == 2
    assert load_checkpoint(run / "model.pt")["step"] == 2
    assert load_checkpoint(run / "train_last.pt")["elapsed_s"] >= spent["train"]


def test_model_holds_the_weight_average(tiny_data, tmp_path):
    over = [*TINY, "data.background=known", "train.steps=3", "train.ema=0.5"]
    run_training(resolve("cpu", overrides=over), tiny_data, tmp_path / "run", progress=False)
    last = load_checkpoint(tmp_path / "run" / "train_last.pt")
    model = _weights(tmp_path / "run" / "model.pt")
    key = "detector.head.2.bias"
    assert last["ema"]["n_averaged"].item() == 3
    assert torch.equal(model[key], last["ema"][f"module.{key}"])
    assert not torch.equal(model[key], last["model"][key])  # the average, not the last weights


def test_weight_average_is_a_mean_then_an_exponential_average():
    from inpaintseg.engine.train import weight_average

    net = torch.nn.Linear(1, 1)
    average = weight_average(net, decay=0.75)  # plain mean over the first 1 / (1 - 0.75) = 4 updates
    values = [1.0, 2.0, 3.0, 6.0, 10.0]
    for v in values:
        with torch.no_grad():
            net.weight.fill_(v)
        average.update_parameters(net)
    expected = sum(values[:4]) / 4  # 3.0
    expected += (values[4] - expected) * 0.25  # then a quarter of the way towards each new value
    assert average.module.weight.item() == pytest.approx(expected)


def test_temporal_background_training(tiny_data, tmp_path):
    over = [*TINY, "data.background=temporal", "sampling.method=exhaustive", "loss.reward=excess",
            "loss.w_box_fit=1", "train.steps=2", "data.temporal_offsets=[-2,2]"]
    run_training(resolve("cpu", overrides=over), tiny_data, tmp_path / "run", progress=False)
    assert any((tmp_path / "run" / "cache").glob("*.npz"))
    assert (tmp_path / "run" / "model.pt").exists()


def test_malicious_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "inpaintseg-model", "x": Evil()}, path)
    with pytest.raises(InpaintsegError, match="refused"):
        Predictor.load(path)


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_auto_background_falls_back_to_the_inpainter_on_unrelated_images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    from inpaintseg.data.image_io import write_png

    for i in range(4):  # unrelated noise images: no neighbour can be aligned
        write_png(folder / f"{i}.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    cfg = resolve("cpu", overrides=[*TINY, "data.background=auto", "sampling.method=exhaustive",
                                    "inpainter.steps=1", "train.steps=1", "data.flow=true"])
    run_training(cfg, folder, tmp_path / "run", progress=False)
    saved = resolve("cpu", config_file=tmp_path / "run" / "config.yaml")
    assert saved.data.background == "inpainter" and saved.sampling.method == "importance"
    assert saved.data.flow is False  # no flow on images that are not video: no flow inpainter either
    assert (tmp_path / "run" / "inpainter.pt").exists()
    assert not (tmp_path / "run" / "flow_inpainter.pt").exists()
    decided = {d["key"]: d for d in json.loads((tmp_path / "run" / "decisions.json").read_text())}
    assert decided["data.background"]["was"] == "auto" and decided["data.background"]["value"] == "inpainter"
    assert "align" in decided["data.background"]["why"] and decided["data.flow"]["value"] is False


def test_collection_background_trains_without_flow_and_with_grabcut_targets(tiny_data, tmp_path):
    cfg = resolve("cpu", overrides=[*TINY, "data.background=collection", "sampling.method=exhaustive",
                                    "data.flow=true", "train.steps=1"])
    run_training(cfg, tiny_data, tmp_path / "run", progress=False)
    saved = resolve("cpu", config_file=tmp_path / "run" / "config.yaml")
    assert saved.data.background == "collection" and saved.data.flow is False
    assert saved.loss.mask_target == "grabcut"  # a per-frame background: GrabCut targets work
    assert not (tmp_path / "run" / "inpainter.pt").exists()


def test_resolve_settings_decides_only_what_the_data_leaves_open():
    cfg = resolve("cpu", overrides=["data.background=auto"])
    assert [d["key"] for d in resolve_settings(cfg, aligned=0.9)] == ["data.background"]
    assert cfg.data.background == "temporal" and cfg.data.flow is True and cfg.loss.mask_target == "grabcut"
    cfg = resolve("cpu", overrides=["data.background=auto"])
    keys = [d["key"] for d in resolve_settings(cfg, aligned=0.1)]
    assert keys == ["data.background", "data.flow", "sampling.method", "loss.mask_target", "train.lr",
                    "train.decoder_lr", "train.inpainter_lr_scale"]
    assert (cfg.data.background, cfg.sampling.method, cfg.loss.mask_target) == ("inpainter", "importance", "ramp")
    assert (cfg.train.lr, cfg.train.decoder_lr) == pytest.approx((1e-4, 1e-4))  # the shipped weights, slowly
    assert resolve_settings(cfg, aligned=0.1) == []  # settled settings stay as they are
    cfg = resolve("cpu", overrides=["data.background=auto", "train.init=none"])  # random weights: full rates
    assert "train.lr" not in [d["key"] for d in resolve_settings(cfg, aligned=0.1)]
    assert (cfg.train.lr, cfg.train.decoder_lr) == (1e-3, 1e-3)
    cfg = resolve("cpu", overrides=["data.background=auto"])  # not in order, but a collection of the same scenes
    assert [d["key"] for d in resolve_settings(cfg, aligned=0.1, aligned_similar=0.8)] == ["data.background",
                                                                                           "data.flow"]
    assert (cfg.data.background, cfg.sampling.method, cfg.loss.mask_target) == ("collection", "exhaustive", "grabcut")
    cfg = resolve("cpu", overrides=["data.background=temporal", "loss.w_bg_flow=0", "loss.w_mask_bg=0"])
    assert [d["key"] for d in resolve_settings(cfg, aligned=0.9)] == ["data.flow"]  # nothing would use the flow
    cfg = resolve("cpu", overrides=["data.background=temporal"])
    assert resolve_settings(cfg, aligned=0.0) == []  # an explicit choice is kept


def test_auto_background_uses_temporal_on_video(tiny_data, tmp_path):
    cfg = resolve("cpu", overrides=[*TINY, "data.background=auto", "train.steps=1", "data.temporal_offsets=[-2,2]",
                                    "data.flow=true"])
    run_training(cfg, tiny_data, tmp_path / "run", progress=False)
    saved = resolve("cpu", config_file=tmp_path / "run" / "config.yaml")
    assert saved.data.background == "temporal" and saved.data.flow is True
    assert not (tmp_path / "run" / "inpainter.pt").exists()
    assert "loss/bg_flow" in (tmp_path / "run" / "train_metrics.jsonl").read_text()


def test_auto_skips_the_temporal_backgrounds_of_frames_out_of_order(tmp_path, monkeypatch):
    """Three panning shots shuffled into one folder: a sample of the frames shows that their neighbours in the
    folder's order do not align, so ``auto`` goes straight to the collection's backgrounds without computing the
    temporal ones first; the same shots in order get the temporal backgrounds only."""
    from inpaintseg.data.image_io import write_png
    from inpaintseg.engine import pipeline
    from tests.test_background import panning_sequence

    shots = [panning_sequence(n=20, seed=seed, x0=x0)[0] for seed, x0 in ((1, 20), (5, 50), (9, 30))]
    items = [(s, t) for s in range(3) for t in range(20)]
    shuffled = [items[k] for k in np.random.default_rng(0).permutation(len(items))]
    for name, order in (("shuffled", shuffled), ("in_order", items)):
        (tmp_path / name).mkdir()
        for k, (s, t) in enumerate(order):
            write_png(tmp_path / name / f"{k:03d}.png", shots[s][t])
    computed = []
    attach = pipeline.attach_backgrounds
    monkeypatch.setattr(pipeline, "attach_backgrounds", lambda bank, per_seq, mode, *a: computed.append(mode)
                        or attach(bank, per_seq, mode, *a))
    for name, expected in (("shuffled", "collection"), ("in_order", "temporal")):
        computed.clear()
        cfg = resolve("cpu", overrides=[*TINY, "data.background=auto", "data.size=[96,64]"])
        pipeline.prepare_data(cfg, tmp_path / name, tmp_path / f"run_{name}", progress=False)
        assert computed == [expected], (name, computed)
    assert cfg.data.background == "temporal"


def test_a_resumed_run_trains_at_its_configured_learning_rates(tiny_data, tmp_path):
    """Resuming keeps the optimiser's moments but takes the learning rates from the configuration, so a long run can
    be annealed by resuming it with a lower rate; both stages save the rate they trained at."""
    run = tmp_path / "run"
    first = [*TINY, "inpainter.steps=2", "train.steps=2"]
    run_training(resolve("cpu", overrides=first), tiny_data, run, progress=False)
    (run / "inpainter.pt").unlink()  # so that stage 1 resumes too
    lower = [*TINY, "inpainter.steps=3", "train.steps=3", "inpainter.lr=1e-5", "train.lr=2e-5",
             "train.decoder_lr=3e-6"]
    run_training(resolve("cpu", overrides=lower), tiny_data, run, resume=True, progress=False)
    stage1 = load_checkpoint(run / "inpainter_last.pt")
    assert stage1["step"] == 3 and [g["lr"] for g in stage1["optimizer"]["param_groups"]] == [1e-5]
    assert stage1["optimizer"]["state"][0]["step"] == 3  # Adam's moments went on, not restarted
    stage2 = load_checkpoint(run / "train_last.pt")
    assert stage2["step"] == 3 and [g["lr"] for g in stage2["optimizer"]["param_groups"]] == [2e-5, 3e-6]
