"""Unit tests of the method's pieces: sampling, disentangling, crop/uncrop, detector, losses."""

import pytest
import torch

from inpaintseg.config import preset
from inpaintseg.losses import background_reward, box_fit_loss, error_map, mask_prior, probability_prior
from inpaintseg.models.crop import box_mask, crop, expand_box, uncrop
from inpaintseg.models.detector import Detector
from inpaintseg.models.model import build_model
from inpaintseg.models.perceptual import PerceptualFeatures, perceptual_distance, perceptual_distance_in_window
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.objective import RunningStats, control_level, stage2_losses
from inpaintseg.sampling import choose_cells


def tiny_cfg():
    cfg = preset("paper")  # the paper's losses only; sizes made tiny below
    cfg.train.pretrained = "none"
    cfg.segmenter.encoder = "small"
    cfg.data.size = [64, 64]
    cfg.detector.input_size = [64, 64]  # 4x4 grid, 2x2 inner cells
    cfg.segmenter.crop_size = 32
    cfg.segmenter.width = 8
    cfg.segmenter.latent = 16
    cfg.segmenter.global_latent = 8
    cfg.segmenter.decoder_channels = [16, 8, 8, 8]
    cfg.inpainter.channels = [4, 8, 8, 8, 8, 8]
    cfg.loss.w_perceptual = 0.0
    return cfg


def test_importance_sampling_is_unbiased_in_value_and_gradient():
    torch.manual_seed(0)
    c = 6
    logits = torch.randn(1, c, requires_grad=True)
    valid = torch.ones(c, dtype=torch.bool)
    f = torch.tensor([[0.3, 1.0, 2.0, 0.1, 0.5, 1.5]])
    probs = torch.softmax(logits, -1)
    exact = (probs * f).sum()
    (g_exact,) = torch.autograd.grad(exact, logits)
    gen = torch.Generator().manual_seed(1)
    n = 20000
    probs = torch.softmax(logits, -1).expand(n, -1)
    cells, w = choose_cells(probs, logits.expand(n, -1), valid, "importance", 1, eps=0.05, generator=gen)
    estimate = (w[:, 0] * f[0, cells[:, 0]]).mean()
    (g_est,) = torch.autograd.grad(estimate, logits)
    assert abs(estimate.item() - exact.item()) < 0.03 * exact.item()
    assert torch.allclose(g_est, g_exact, atol=0.02)
    # uniform sampling is unbiased too (with more variance)
    cells, w = choose_cells(probs, logits.expand(n, -1), valid, "uniform", 1, generator=gen)
    assert abs((w[:, 0] * f[0, cells[:, 0]]).mean().item() - exact.item()) < 0.06 * exact.item()


def test_exhaustive_weights_are_the_probabilities():
    probs = torch.softmax(torch.randn(2, 5), -1)
    valid = torch.tensor([True, True, False, True, True])
    cells, w = choose_cells(probs, probs.log(), valid, "exhaustive")
    assert cells.tolist() == [[0, 1, 3, 4]] * 2
    assert torch.allclose(w, probs[:, [0, 1, 3, 4]])


def test_gumbel_sampling_draws_cells_with_their_probabilities():
    # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits); border cells (-inf) never win
    logits = torch.tensor([[-torch.inf, 0.0, 1.0, 2.0, -torch.inf]], requires_grad=True)
    valid = torch.tensor([False, True, True, True, False])
    n = 20000
    probs = logits.softmax(-1)
    cells, w = choose_cells(probs.expand(n, -1), logits.expand(n, -1), valid, "gumbel", 1, temperature=0.1,
                            generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(cells[:, 0], minlength=5).float() / n
    assert torch.allclose(freq, probs[0].detach(), atol=0.015)
    # straight-through weights: 1 in value, with a gradient to the logits through the relaxed sample
    assert torch.isfinite(w).all() and torch.allclose(w, torch.ones_like(w))
    (w[:, 0] * torch.arange(5.0)[cells[:, 0]]).mean().backward()
    assert torch.isfinite(logits.grad[0, 1:4]).all() and logits.grad[0, 1:4].abs().sum() > 0


@pytest.mark.parametrize("backbone", ["resnet18", "small"])
def test_border_cells_have_zero_probability(backbone):
    det = Detector(input_size=(96, 64), border=1, backbone=backbone)
    props = det(torch.rand(2, 3, 64, 96))
    assert props.grid == (4, 6)
    p = props.probs.view(2, 4, 6)
    assert torch.all(p[:, 0] == 0) and torch.all(p[:, -1] == 0)
    assert torch.all(p[:, :, 0] == 0) and torch.all(p[:, :, -1] == 0)
    assert torch.all(p[:, 1:-1, 1:-1] > 0)
    assert torch.allclose(p.sum(dim=(1, 2)), torch.ones(2))
    # small head init: probabilities start uniform over the 2x4 inner cells, boxes mid-sized on cell centres
    assert torch.allclose(p[:, 1:-1, 1:-1], torch.full((2, 2, 4), 1 / 8), atol=0.01)
    assert torch.allclose(props.boxes[..., 2:], torch.full_like(props.boxes[..., 2:], 0.5), atol=0.02)


def test_small_detector_backbone_has_a_quarter_of_the_parameters_and_trains():
    big, small = Detector(backbone="resnet18"), Detector(backbone="small")
    count = lambda m: sum(p.numel() for p in m.backbone.parameters())  # noqa: E731
    assert 0.2 < count(small) / count(big) < 0.3
    x = torch.rand(2, 3, 128, 128)
    props = small(x)
    assert props.grid == (8, 8) and props.boxes.shape == (2, 64, 4)
    props.probs[:, 27].sum().backward()  # a gradient reaches the first convolution
    assert small.backbone[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown detector backbone"):
        Detector(backbone="vgg")
    with pytest.warns(UserWarning, match="backbone=small has no pretrained weights"):
        Detector(backbone="small", pretrained="imagenet")


def test_crop_then_uncrop_reproduces_box_content():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 64, 64)
    img = torch.nn.functional.avg_pool2d(img, 5, 1, 2)  # smooth, so resampling error is small
    box = torch.tensor([[0.5, 0.5, 0.5, 0.5]])  # pixels 16..48
    patch = crop(img, box, 32)  # one patch pixel per image pixel
    assert torch.allclose(patch, img[..., 16:48, 16:48], atol=1e-5)
    back = uncrop(patch, box, 64, 64)
    inside = box_mask(box, 64, 64).bool().expand_as(back)
    interior = torch.zeros_like(inside)
    interior[..., 17:47, 17:47] = True
    assert torch.allclose(back[interior], img[interior], atol=1e-5)
    outside = torch.ones_like(inside)
    outside[..., 15:49, 15:49] = False  # beyond one pixel of the box edge, nothing leaks
    assert torch.all(back[outside] == 0)


def test_expand_box_and_box_mask():
    box = torch.tensor([[0.5, 0.5, 0.25, 0.5]])
    assert torch.allclose(expand_box(box, 0.15), torch.tensor([[0.5, 0.5, 0.2875, 0.575]]))
    m = box_mask(box, 8, 8)
    assert m.sum().item() == 2 * 4  # x in [3, 5), y in [2, 6)
    assert m[0, 0, 2:6, 3:5].sum().item() == 8


def test_rewards_and_priors():
    errors = torch.zeros(1, 10, 10)
    errors[0, 2:4, 2:4] = 1.0  # an object the background cannot explain: 4 pixels
    small = box_mask(torch.tensor([[0.3, 0.3, 0.2, 0.2]]), 10, 10)  # exactly the object
    big = box_mask(torch.tensor([[0.5, 0.5, 0.8, 0.8]]), 10, 10)
    assert background_reward(errors, small).item() == 1.0
    assert abs(background_reward(errors, big).item() - 4 / 64) < 1e-6
    level = torch.tensor([0.1])
    assert abs(background_reward(errors, small, "excess", level).item() - (4 - 0.4) / 100) < 1e-6
    assert background_reward(errors, small, "excess", level) > background_reward(errors, big, "excess", level)
    assert abs(mask_prior(torch.zeros(1, 1, 4, 4), 0.005).item() - 0.01) < 1e-7
    assert abs(mask_prior(torch.full((1, 1, 4, 4), 0.5), 0.005).item() - 0.5) < 1e-7
    half = torch.cat([torch.zeros(1, 1, 2, 4), torch.ones(1, 1, 2, 4)], dim=2) * 0.5  # mean 0.25, mean square 0.125
    assert mask_prior(torch.zeros(1, 1, 4, 4), 0.005, "l1").item() == 0.0  # no target: zero at an empty mask
    assert abs(mask_prior(half, 0.005, "l1").item() - 0.25) < 1e-7
    assert abs(mask_prior(half, 0.005, "l2").item() - 0.125) < 1e-7
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    assert probability_prior(p, "l1").item() == 1.0
    assert abs(probability_prior(p, "l2").item() - 0.125) < 1e-7


def test_box_fit_moves_edges_towards_the_object():
    errors = torch.zeros(1, 40, 40)
    errors[0, 10:30, 10:30] = 1.0
    level = torch.tensor([0.2])
    box = torch.tensor([[0.5, 0.5, 0.3, 0.3]], requires_grad=True)  # smaller than the 0.5 object
    box_fit_loss(box, errors, level).backward()
    assert box.grad[0, 2] < 0 and box.grad[0, 3] < 0  # descent grows the box
    box = torch.tensor([[0.5, 0.5, 0.8, 0.8]], requires_grad=True)  # larger than the object
    box_fit_loss(box, errors, level).backward()
    assert box.grad[0, 2] > 0 and box.grad[0, 3] > 0  # descent shrinks it


def _stage2_grads(cfg, term, phi=None):
    torch.manual_seed(0)
    model = build_model(cfg)
    inpainter = InpaintingUNet(cfg.inpainter.channels).eval()
    images = torch.rand(2, 3, 64, 64)
    cfg.loss.w_bg = cfg.loss.w_fg = cfg.loss.w_v = cfg.loss.w_p = 0.0
    setattr(cfg.loss, term, 1.0)
    gen = torch.Generator().manual_seed(0)
    total, _, _ = stage2_losses(model, inpainter, phi, images, None, cfg, RunningStats(), gen)
    total.backward()
    head = model.detector.head[-1]
    logit_grad = head.weight.grad[4].abs().sum() + head.bias.grad[4].abs()
    box_grad = head.weight.grad[:4].abs().sum() + head.bias.grad[:4].abs().sum()
    s_grad = sum(p.grad.abs().sum() for p in model.segmenter.parameters() if p.grad is not None)
    return logit_grad.item(), box_grad.item(), float(s_grad)


def test_disentangled_gradients():
    cfg = tiny_cfg()
    logit_g, box_g, s_g = _stage2_grads(cfg, "w_fg")
    assert logit_g == 0.0 and box_g > 0 and s_g > 0  # L_fg: box and S only
    logit_g, box_g, s_g = _stage2_grads(tiny_cfg(), "w_bg")
    assert logit_g > 0 and box_g == 0.0 and s_g == 0.0  # L_bg: probabilities only
    cfg = tiny_cfg()
    cfg.sampling.disentangled = False
    logit_g, box_g, s_g = _stage2_grads(cfg, "w_fg")
    assert logit_g > 0 and box_g > 0  # joint: L_fg reaches the probabilities too


def test_perceptual_term_in_the_hole_estimates_the_full_frame_term():
    """F(I) differs from I only in the hole: L_f on the hole's crop, scaled by its share of the frame, is close
    to L_f on the whole frame for a smooth difference, ignores differences outside the window, and trains S
    and the box, not the probabilities."""
    torch.manual_seed(0)
    phi = PerceptualFeatures("none")
    image = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 96, 160), 5, 1, 2)
    box = torch.tensor([[0.3, 0.5, 0.25, 0.8], [0.6, 0.4, 0.3, 0.5], [0.5, 0.5, 0.2, 0.9], [0.9, 0.5, 0.3, 0.8]])
    window = expand_box(box, 0.15)  # the last one leaves the frame on the right
    hole = box_mask(window, 96, 160)
    other = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 96, 160), 7, 1, 3)
    x = (image * (1 - hole) + other * hole).requires_grad_(True)
    inside = perceptual_distance_in_window(phi, x, image, window, 64)
    ratio = inside / perceptual_distance(phi, x, image)
    assert ((ratio > 0.6) & (ratio < 1.1)).all(), ratio
    assert perceptual_distance_in_window(phi, image, image, window, 64).abs().max() == 0
    outside = image + (1 - hole) * (other - image)  # the same change, outside the window only
    leak = perceptual_distance_in_window(phi, outside, image, window, 64)  # only through its edge pixels
    assert (leak < 0.05 * perceptual_distance(phi, outside, image)).all(), leak
    window.requires_grad_(True)
    perceptual_distance_in_window(phi, x, image, window, 64).sum().backward()
    assert x.grad.abs().sum() > 0 and window.grad is None  # the window is a constant
    cfg = tiny_cfg()
    cfg.loss.perceptual_region = "hole"
    logit_g, box_g, s_g = _stage2_grads(cfg, "w_perceptual", phi)
    assert logit_g == 0.0 and box_g > 0 and s_g > 0


def test_stage2_with_known_background_and_exhaustive_sampling():
    cfg = tiny_cfg()
    cfg.sampling.method = "exhaustive"
    cfg.loss.reward = "excess"
    cfg.loss.w_box_fit = 1.0
    model = build_model(cfg)
    images = torch.rand(2, 3, 64, 64)
    total, terms, _ = stage2_losses(model, None, None, images, images.clone(), cfg, RunningStats(),
                                    torch.Generator().manual_seed(0))
    assert torch.isfinite(total)
    assert terms["vital/hole_error"] == 0.0  # a perfect background explains every box


@pytest.mark.parametrize("method", ["importance", "exhaustive"])
def test_stage2_with_the_inpainter_and_the_cpu_terms(method):
    # the inpainter path with every term that compares errors with a level (excess reward, box fit, mask target)
    cfg = tiny_cfg()
    cfg.sampling.method, cfg.sampling.samples = method, 2
    cfg.loss.reward, cfg.loss.w_box_fit, cfg.loss.w_mask_bg = "excess", 1.0, 1.0
    model, inpainter = build_model(cfg), InpaintingUNet(cfg.inpainter.channels)
    total, terms, _ = stage2_losses(model, inpainter, None, torch.rand(2, 3, 64, 64), None, cfg, RunningStats(),
                                    torch.Generator().manual_seed(0))
    total.backward()
    assert torch.isfinite(total) and {"loss/box_fit", "loss/mask_bg"} <= terms.keys()


def test_background_mask_target():
    from inpaintseg.losses import background_mask_target, mask_bce

    errors = torch.tensor([0.5, 1.0, 3.0, 5.0, 9.0]).view(1, 1, 1, 5)
    t = background_mask_target(errors, torch.tensor([1.0]))
    assert torch.allclose(t.flatten(), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    good = mask_bce(torch.tensor([1e-4, 1e-4, 0.5, 1.0, 1.0]).view(1, 1, 1, 5), t)
    bad = mask_bce(torch.full((1, 1, 1, 5), 0.5), t)
    assert good < bad


def test_control_level_is_the_inpainters_error_on_a_same_size_hole_elsewhere():
    # with the inpainter, the mask target's and the box fit's "background level" is the error of a hole of the
    # box's size somewhere else in the image: an object filling the box must not raise it
    class FillGrey:  # a stand-in inpainter: perfect on the grey background, wrong on the object
        def inpaint(self, images, holes):
            return holes * 0.5 + (1 - holes) * images

    images = torch.full((64, 3, 40, 40), 0.5)
    images[:, :, 4:12, 4:12] = 1.0  # the object: an 8 x 8 square, error 0.25 per pixel
    box = torch.tensor([[0.2, 0.2, 0.2, 0.2]]).expand(64, 4)
    level = control_level(images, FillGrey(), box, 0.15, torch.Generator().manual_seed(0))
    hole = box_mask(expand_box(box, 0.15), 40, 40)
    own = background_reward(error_map(FillGrey().inpaint(images, hole), images), hole)[:, 0]
    assert level.shape == (64,) and (own > 0.15).all()
    assert (level < 0.01).float().mean() > 0.7 and level.mean() < own.mean() / 4  # mostly background holes
    assert 0.02 < level.max() <= 0.25 + 1e-6  # a hole overlapping the object counts it, at most its own error
    images[:] = 0.0  # error 0.25 everywhere: every hole, wherever it is, has density 0.25
    level = control_level(images, FillGrey(), box, 0.15, torch.Generator().manual_seed(0))
    assert torch.allclose(level, torch.full((64,), 0.25))


def test_box_from_mask():
    import numpy as np

    from inpaintseg.boxes import box_from_mask

    mask = np.zeros((10, 20), np.float32)
    mask[2:5, 3:9] = 0.8
    mask[7, 15] = 0.1  # faint pixel below 0.25 x max: ignored
    fallback = np.array([0, 0, 20, 10], np.float32)
    assert box_from_mask(mask, fallback, 0.25).tolist() == [3, 2, 9, 5]
    assert box_from_mask(mask, fallback, 0.1).tolist() == [3, 2, 16, 8]
    assert box_from_mask(np.zeros_like(mask), fallback).tolist() == fallback.tolist()
    assert box_from_mask(mask, fallback, 0.0).tolist() == fallback.tolist()


def test_mask_skips_start_as_the_bottleneck_and_leave_the_foreground_alone():
    from inpaintseg.models.autoencoder import SegmentationAutoencoder

    args = dict(crop_size=32, encoder="small", width=8, latent=16, global_latent=8, decoder_channels=[16, 8, 8, 8])
    torch.manual_seed(0)
    plain = SegmentationAutoencoder(**args).eval()
    torch.manual_seed(0)
    skips = SegmentationAutoencoder(**args, mask_skips=True).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        (f0, m0), (f1, m1) = plain(x), skips(x)
        assert torch.equal(f0, f1) and torch.allclose(m0, m1)  # zero-initialised residual head
        torch.nn.init.normal_(skips.mask_head[-1].weight)
        f2, m2 = skips(x)
    assert torch.equal(f0, f2)  # the foreground image still comes from the bottleneck alone
    assert (m2 - m0).abs().max() > 1e-3
    assert set(map(id, skips.mask_head.parameters())) <= set(map(id, skips.decoder_parameters()))


