import pytest

from inpaintseg.cli import main
from inpaintseg.config import Config, apply_overrides, from_dict, load, preset, resolve
from inpaintseg.errors import ConfigError


def test_paper_preset_has_the_papers_values():
    cfg = preset("paper")
    assert cfg.data.size == [640, 360]
    assert cfg.inpainter.channels == [8, 16, 32, 64, 128, 256]
    assert cfg.inpainter.steps == 200_000 and cfg.train.steps == 100_000
    assert cfg.detector.input_size == [128, 128] and cfg.detector.scale_range == [0.2, 0.8]
    assert cfg.segmenter.encoder == "resnet50" and cfg.segmenter.crop_size == 128
    assert (cfg.segmenter.latent, cfg.segmenter.global_latent) == (600, 256)
    assert cfg.segmenter.decoder_channels == [512, 256, 128, 64]
    loss = cfg.loss
    assert (loss.w_bg, loss.w_fg, loss.w_perceptual, loss.w_v, loss.w_p) == (0.1, 1.0, 2.0, 0.25, 0.1)
    assert loss.tau == 0.005 and loss.hole_expand == 0.15
    assert cfg.sampling.eps == 0.001 and cfg.sampling.method == "importance" and cfg.sampling.disentangled
    assert (cfg.train.lr, cfg.train.decoder_lr, cfg.train.batch) == (1e-3, 1e-4, 16)
    assert cfg.data.flow is False  # section 3.5's flow is an addition to the method


def test_cpu_preset_uses_the_flow():  # on video; background=auto turns it off on other data (test_training.py)
    assert preset("cpu").data.flow is True


def test_overrides_and_types():
    cfg = apply_overrides(preset("cpu"), ["train.minutes=40", "detector.scale_range=[0.1, 0.6]", "loss.w_bg=1"])
    assert apply_overrides(preset("cpu"), ["train.decoder_lr=1e-3"]).train.decoder_lr == 0.001
    assert cfg.train.minutes == 40.0 and cfg.detector.scale_range == [0.1, 0.6] and cfg.loss.w_bg == 1.0
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(preset("cpu"), ["train.batch=abc"])
    with pytest.raises(ConfigError, match="choose one of"):
        apply_overrides(preset("cpu"), ["sampling.method=magic"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(preset("cpu"), ["train.minutes"])


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'train.minutes'"):
        apply_overrides(preset("cpu"), ["train.minuts=3"])
    with pytest.raises(ConfigError, match="did you mean 'inpainter.minutes'"):
        apply_overrides(preset("cpu"), ["inpaintr.minutes=3"])


def test_yaml_round_trip(tmp_path):
    cfg = resolve("cpu", overrides=["loss.reward=excess", "data.background=temporal"])
    cfg.save(tmp_path / "c.yaml")
    again = load(tmp_path / "c.yaml")
    assert again == cfg and isinstance(again, Config)
    assert from_dict(cfg.to_dict()) == cfg


def test_yaml_is_parsed_safely(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load(bad)


def test_config_command_prints_resolved_yaml(capsys):
    assert main(["config", "--preset", "cpu", "train.minutes=7"]) == 0
    out = capsys.readouterr().out
    assert "minutes: 7.0" in out and "size:\n  - 160\n  - 96" in out
    assert main(["config", "train.minuts=7"]) == 2
    assert "did you mean 'train.minutes'" in capsys.readouterr().err
