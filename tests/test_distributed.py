"""Multi-process training (torchrun-style, gloo on CPU): one 2-process step equals the single-process step."""

import os
import socket

import torch
import torch.multiprocessing as mp

from inpaintseg.config import resolve
from inpaintseg.engine import distributed
from inpaintseg.engine.common import step_generator
from inpaintseg.engine.train import make_optimizer
from inpaintseg.models.model import build_model
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.objective import RunningStats, stage2_losses

OVERRIDES = [
    "data.size=[64,64]", "detector.input_size=[64,64]", "segmenter.crop_size=32", "segmenter.width=8",
    "segmenter.latent=16", "segmenter.global_latent=8", "segmenter.decoder_channels=[16,8,8,8]",
    "inpainter.channels=[4,8,8,8,8,8]", "data.background=inpainter", "sampling.method=importance",
    "loss.normalize_reward=false", "loss.baseline=false", "loss.w_perceptual=0", "segmenter.dropout=0",
    "train.init=none",
]


def _setup():
    torch.manual_seed(0)
    cfg = resolve("cpu", overrides=OVERRIDES)
    model = build_model(cfg)
    inpainter = InpaintingUNet(cfg.inpainter.channels).eval()
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    return cfg, model, inpainter, images


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    torch.set_num_threads(1)
    distributed.setup()
    cfg, model, inpainter, images = _setup()
    opt = make_optimizer(model, cfg)
    local = distributed.shard(images)
    total, _, _ = stage2_losses(model, inpainter, None, local, None, cfg, RunningStats(),
                                step_generator(0, 0, 3 + rank))
    total.backward()
    distributed.average_gradients(model.parameters())
    if rank == 0:  # the averaged gradients: what the optimiser step sees on every rank
        torch.save({k: p.grad for k, p in model.named_parameters() if p.grad is not None}, out)
    opt.step()
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_step_equals_single_process_step(tmp_path):
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)

    # reference: one process, the same global batch as two shards (BatchNorm statistics are per shard in
    # multi-process CPU training), gradients averaged
    cfg, model, inpainter, images = _setup()
    for rank, local in enumerate(images.chunk(2)):
        total, _, _ = stage2_losses(model, inpainter, None, local, None, cfg, RunningStats(),
                                    step_generator(0, 0, 3 + rank))
        (total / 2).backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert len(grads) > 20 and set(ddp) <= set(grads)
    for key, g in grads.items():
        other = ddp.get(key, torch.zeros_like(g))
        scale = g.abs().max().item()  # float summation order differs between processes
        assert torch.allclose(other, g, rtol=1e-4, atol=1e-5 * scale + 1e-12), (key, (other - g).abs().max().item())
    assert sum(g.abs().sum() for g in grads.values()) > 0


def _train_worker(rank: int, port: int, data: str, run: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    torch.set_num_threads(1)
    from inpaintseg.engine.pipeline import run_training

    over = [*OVERRIDES, "inpainter.steps=2", "train.steps=2", "inpainter.batch=4", "train.batch=4",
            "inpainter.minutes=0", "train.minutes=1"]
    run_training(resolve("cpu", overrides=over), data, run, progress=False)
    torch.distributed.destroy_process_group()


def test_two_process_training_runs_both_stages(tmp_path):
    from inpaintseg.data.synth import generate
    from inpaintseg.engine.checkpoint import load_checkpoint

    data = generate(tmp_path / "data", sequences=2, frames=4, size=(96, 64), seed=1)
    mp.spawn(_train_worker, args=(_free_port(), str(data), str(tmp_path / "run")), nprocs=2, join=True)
    assert load_checkpoint(tmp_path / "run" / "inpainter.pt")["step"] == 2
    assert load_checkpoint(tmp_path / "run" / "model.pt")["step"] == 2


def _predict_worker(rank: int, port: int, model: str, source: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    torch.set_num_threads(1)
    from inpaintseg.predict import predict_source

    predict_source(model, source, out, batch=2, progress=False, save="masks,coco")
    torch.distributed.destroy_process_group()


def test_two_process_prediction_writes_the_same_bytes_as_one(tmp_path):
    """predict under two real gloo processes (each predicts a share, rank 0 merges the JSON files) writes
    files byte-identical to one process's, and no per-rank leftovers."""
    from pathlib import Path

    from inpaintseg.engine.checkpoint import save_checkpoint
    from inpaintseg.engine.train import model_payload
    from inpaintseg.predict import predict_source

    cfg, model, _, _ = _setup()
    save_checkpoint(tmp_path / "model.pt", model_payload(model.eval(), cfg, 0))
    source = Path(__file__).parent / "data" / "davis_mini"
    predict_source(tmp_path / "model.pt", source, tmp_path / "one", batch=2, progress=False, save="masks,coco")
    mp.spawn(_predict_worker, args=(_free_port(), str(tmp_path / "model.pt"), str(source), str(tmp_path / "two")),
             nprocs=2, join=True)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert one == two and len(one) == 2 * 3 + 2  # 6 masks, detections.json, coco.json
    for name in one:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
