"""Inference tool: every source kind, every output kind, several objects (top-K + NMS), GrabCut and dense CRF,
streaming videos, torchrun sharding (simulated rank by rank in one process)."""

import json
import sys

import av
import cv2
import numpy as np
import pytest
import torch

from inpaintseg import video as video_module
from inpaintseg.boxes import box_iou, select_cells
from inpaintseg.cli import main
from inpaintseg.config import resolve
from inpaintseg.crf import refine_mask
from inpaintseg.data.image_io import read_image, read_mask
from inpaintseg.data.synth import generate
from inpaintseg.engine import distributed
from inpaintseg.engine.pipeline import run_training
from inpaintseg.errors import InpaintsegError
from inpaintseg.grabcut import refine_grabcut
from inpaintseg.models.crop import crop, uncrop
from inpaintseg.predict import Predictor, predict_source
from inpaintseg.sharding import Shard, shard_source
from inpaintseg.video import VideoWriter, concat_videos
from inpaintseg.writers import parse_save
from tests.helpers import TINY as BASE_TINY

TINY = [*BASE_TINY, "data.background=known", "train.steps=3"]


def write_video(path, frames, fps=10):
    """RGB uint8 (H, W, 3) frames -> an H.264 mp4 (even sides) at ``fps``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for im in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(im, format="rgb24")))
        container.mux(stream.encode(None))


def video_info(path):
    """(number of decoded frames, average frame rate, (H, W)) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return len(frames), float(stream.average_rate), (frames[0].height, frames[0].width)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny synthetic DAVIS root (2 sequences x 6 frames, 96x64), a trained-for-seconds model and videos."""
    root = tmp_path_factory.mktemp("predict")
    davis = generate(root / "davis", camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)
    model = run_training(resolve("cpu", overrides=TINY), davis, root / "run", progress=False)
    frames = [read_image(p) for p in sorted((davis / "JPEGImages" / "seq000").glob("*.jpg"))]
    (root / "videos").mkdir()
    write_video(root / "videos" / "clip.mp4", frames, fps=10)
    write_video(root / "videos" / "other.mp4", frames[:4][::-1], fps=10)
    write_video(root / "long.mp4", [frames[k % 6] for k in range(30)], fps=15)
    return {"root": root, "davis": davis, "model": model, "frames": frames}


@pytest.fixture(scope="module")
def predictor(data):
    """Masks as S gives them (no refinement), so tests can recompute them from the network."""
    return Predictor.load(data["model"], refine="none")


# -- top-K + NMS --------------------------------------------------------------------------------------------


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[2, 0, 12, 10], [10, 10, 20, 20], [5, 5, 15, 15]], np.float32)
    # overlaps: 8x10 = 80 / (100 + 100 - 80); touching corner: 0; 5x5 = 25 / 175
    np.testing.assert_allclose(box_iou(a, b), [[80 / 120, 0.0, 25 / 175]])


def test_select_cells_top_k_with_nms_and_floor():
    probs = np.zeros((4, 4))
    probs[1, 1], probs[1, 2], probs[2, 2], probs[2, 1] = 0.40, 0.30, 0.20, 0.04
    probs[0, 0] = 0.06  # the rest of the mass spread so it sums to 1 is irrelevant here
    probs = probs.ravel()
    boxes = np.zeros((16, 4))
    boxes[5] = [0, 0, 10, 10]  # most probable: object A
    boxes[6] = [2, 0, 12, 10]  # neighbouring cell, same object: IoU 0.667 with A
    boxes[10] = [30, 30, 40, 40]  # object B, far away
    boxes[9] = [50, 0, 60, 10]  # object C, far away, but p = 0.04 < floor
    boxes[0] = [1, 1, 11, 11]  # overlaps A: IoU 81 / 119 = 0.68
    assert select_cells(probs, boxes, max_objects=1).tolist() == [5]
    assert select_cells(probs, boxes, max_objects=5).tolist() == [5, 10]
    assert select_cells(probs, boxes, max_objects=5, nms_iou=0.7).tolist() == [5, 6, 10, 0]
    assert select_cells(probs, boxes, max_objects=2, nms_iou=0.7).tolist() == [5, 6]
    assert select_cells(probs, boxes, max_objects=5, min_prob=0.01).tolist() == [5, 10, 9]
    # the argmax cell is kept even below the floor
    assert select_cells(probs * 0.01, boxes, max_objects=3, min_prob=0.05).tolist() == [5]


def test_select_cells_k1_is_the_argmax():
    rng = np.random.default_rng(0)
    boxes = rng.random((16, 4))
    for _ in range(50):
        probs = rng.dirichlet(np.ones(16))
        assert select_cells(probs, boxes, max_objects=1).tolist() == [int(np.argmax(probs))]
    tied = np.array([0.1, 0.3, 0.3, 0.3])
    assert select_cells(tied, boxes[:4], max_objects=1).tolist() == [1]  # first among ties, like argmax


def test_predictor_k1_is_argmax_and_k_objects_are_segmented_separately(data, predictor):
    image = data["frames"][2]
    one = predictor.predict(image)
    assert one.cells.tolist() == [int(np.argmax(one.probabilities))]
    assert one.masks.shape == (1, 64, 96) and one.boxes.shape == (1, 4)
    many = Predictor(predictor.model, predictor.cfg, max_objects=3, nms_iou=1.0, min_prob=0.0, refine="none")
    pred = many.predict(image)
    assert len(pred.cells) == 3 and pred.masks.shape == (3, 64, 96)
    assert np.all(np.diff(pred.scores) <= 0)
    assert pred.cells[0] == one.cells[0]  # object 0 = the K=1 result (up to float error of batch size 3 vs 1)
    np.testing.assert_allclose(pred.masks[0], one.masks[0], atol=1e-6)
    np.testing.assert_allclose(pred.proposals[0], one.proposals[0], atol=1e-4)
    np.testing.assert_array_equal(pred.mask, pred.masks.max(axis=0))
    # each object: its own crop of its own cell's box through S (cropped from the 96x64 image itself)
    x = torch.from_numpy(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None]
    x = x.float() / 255
    with torch.no_grad():
        props = predictor.model(x)
        for k, cell in enumerate(pred.cells):
            box = props.boxes[:, int(cell)]
            _, m = predictor.model.segmenter(predictor._patches([image], x, torch.zeros(1, dtype=torch.long), box))
            expected = uncrop(m, box, 64, 96)[0, 0].clamp(0, 1).numpy()
            np.testing.assert_allclose(pred.masks[k], expected, atol=1e-5)
            assert pred.scores[k] == pytest.approx(float(props.probs[0, int(cell)]))
    # default NMS (0.3) never keeps two boxes that overlap more than that
    nms = Predictor(predictor.model, predictor.cfg, max_objects=4, min_prob=0.0).predict(image)
    corners = nms.proposals
    iou = box_iou(corners, corners)[~np.eye(len(corners), dtype=bool)]
    assert np.all(iou <= 0.3)


def test_two_figures_far_apart_give_two_objects_and_duplicates_are_suppressed(predictor, tmp_path, monkeypatch):
    """A synthetic frame with two figures; the detector's output is replaced by a hand-made one: the best cell
    and a neighbour both propose figure A, a third cell figure B. K=2 with NMS must return A and B."""
    root = generate(tmp_path / "two", camera="static", sequences=1, frames=4, size=(192, 96), figures=2, seed=11)
    meta = json.loads((root / "meta.json").read_text())
    frames = meta["sequences"]["seq000"]["frames"]
    far = [f for f in frames if box_iou(np.array(f["boxes"][:1], float), np.array(f["boxes"][1:2], float))[0, 0] == 0]
    assert far, "the generator put the two figures on top of each other in every frame"
    frame = far[0]
    image = read_image(root / "JPEGImages" / "seq000" / f"{frame['name']}.jpg")
    h, w = image.shape[:2]
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = frame["boxes"][:2]
    to_cxcywh = lambda x0, y0, x1, y1: [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]  # noqa: E731
    real = predictor.model.detector.forward

    def fake(x):
        props = real(x)
        c = props.probs.shape[1]
        boxes = torch.tensor([[0.5, 0.5, 0.05, 0.05]] * c).repeat(x.shape[0], 1, 1)
        probs = torch.full((x.shape[0], c), 0.05 / (c - 3))
        box_a = to_cxcywh(ax0, ay0, ax1, ay1)
        chosen = ((5, box_a, 0.5), (6, [box_a[0] + 0.01, *box_a[1:]], 0.3), (9, to_cxcywh(bx0, by0, bx1, by1), 0.15))
        for cell, box, p in chosen:
            boxes[:, cell] = torch.tensor(box)
            probs[:, cell] = p
        return type(props)(logits=probs.log(), probs=probs, boxes=boxes, scale_logits=props.scale_logits,
                           grid=props.grid)

    monkeypatch.setattr(predictor.model.detector, "forward", fake)
    two = Predictor(predictor.model, predictor.cfg, max_objects=2, box_from_mask=0, refine="none").predict(image)
    assert two.cells.tolist() == [5, 9]  # cell 6 (a duplicate of figure A, IoU > 0.3) is suppressed
    np.testing.assert_allclose(two.boxes, [[ax0, ay0, ax1, ay1], [bx0, by0, bx1, by1]], atol=0.01 * w)
    for k, (x0, y0, x1, y1) in enumerate(two.boxes.round().astype(int)):
        outside = two.masks[k].copy()
        outside[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = 0
        assert outside.max() == 0  # each object's mask lies in its own box
    assert Predictor(predictor.model, predictor.cfg, max_objects=1).predict(image).cells.tolist() == [5]


def test_bad_options_are_config_errors(predictor):
    with pytest.raises(InpaintsegError, match="max_objects"):
        Predictor(predictor.model, predictor.cfg, max_objects=0)
    with pytest.raises(InpaintsegError, match="nms_iou"):
        Predictor(predictor.model, predictor.cfg, nms_iou=1.5)
    with pytest.raises(InpaintsegError, match="refine must be one of grabcut, crf, none, got 'dense'"):
        Predictor(predictor.model, predictor.cfg, refine="dense")
    with pytest.raises(InpaintsegError, match="--save"):
        parse_save("masks,movie")
    assert parse_save("masks, coco,masks") == ("masks", "coco")


# -- GrabCut and CRF ------------------------------------------------------------------------------------------


def test_missing_crf_package_says_how_to_install(monkeypatch, predictor):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(InpaintsegError, match=r"install inpaintseg\[crf\]"):
        refine_mask(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32))
    with pytest.raises(InpaintsegError, match=r"install inpaintseg\[crf\]"):
        Predictor(predictor.model, predictor.cfg, refine="crf")


def _square_scene():
    rng = np.random.default_rng(1)
    image = np.empty((64, 80, 3), np.float32)
    image[:] = (40, 120, 40)
    image[20:44, 30:54] = (220, 40, 40)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    square = np.zeros((64, 80), bool)
    square[20:44, 30:54] = True
    soft = np.zeros((64, 80), np.float32)
    soft[17:41, 26:50] = 1  # shifted by (-3, -4) and blurred: a typical soft mask
    soft = cv2.GaussianBlur(soft, (0, 0), 5)
    return image, square, 0.9 * soft / soft.max()


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_flip_tta_averages_the_mask_with_the_mirrored_image_s(data, predictor):
    image = cv2.resize(data["frames"][1], (64, 64), interpolation=cv2.INTER_AREA)  # the working size
    plain = predictor.predict(image)
    tta = Predictor(predictor.model, predictor.cfg, flip_tta=True, refine="none").predict(image)
    assert tta.cells.tolist() == plain.cells.tolist()  # D runs once, on the unmirrored image
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        box = predictor.model(x).boxes[:, int(plain.cells[0])]
        mirrored = box.clone()
        mirrored[:, 0] = 1 - mirrored[:, 0]
        m = 0.5 * (predictor.model.segment(x, box)[1] + predictor.model.segment(x.flip(-1), mirrored)[1].flip(-1))
    np.testing.assert_allclose(tta.masks[0], uncrop(m, box, 64, 64)[0, 0].clamp(0, 1).numpy(), atol=1e-5)
    assert np.abs(tta.masks[0] - plain.masks[0]).max() > 1e-4  # S is not mirror-symmetric: TTA changes masks


def test_s_crops_from_the_image_itself_when_it_is_larger_than_the_working_size(predictor):
    """Stripes 2 px wide in a 4x-size image vanish in the working-size image (area resize) but reach S's crop;
    an image at the working size is cropped exactly as in training."""
    w, h = predictor.size
    big = np.full((4 * h, 4 * w, 3), 128, np.uint8)
    big[:, (np.arange(4 * w) // 2) % 2 == 1] = 255
    big[:, (np.arange(4 * w) // 2) % 2 == 0] = 0
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    assert small.std() < 1  # the working size sees flat grey
    box = torch.tensor([[0.5, 0.5, 0.1, 0.5]])  # 0.1 x 4w = 25.6 px of the big image across S's crop
    owner = torch.zeros(1, dtype=torch.long)
    x = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255
    fine = predictor._patches([big], x, owner, box)
    assert fine.shape == (1, 3, predictor.model.segmenter.crop_size, predictor.model.segmenter.crop_size)
    assert fine.std() > 0.3  # the stripes are there
    assert 0.45 < fine.mean() < 0.55
    coarse = predictor._patches([small], x, owner, box)
    torch.testing.assert_close(coarse, crop(x, box, predictor.model.segmenter.crop_size))
    assert coarse.std() < 0.01


def test_crf_snaps_a_blurry_mask_to_the_coloured_square():
    pytest.importorskip("pydensecrf.densecrf")
    image, square, soft = _square_scene()
    refined = refine_mask(image, soft)
    assert refined.dtype == np.float32 and refined.shape == square.shape
    assert 0 <= refined.min() and refined.max() <= 1
    before, after = _iou(soft >= 0.5, square), _iou(refined > 0.5, square)
    assert before < 0.7 and after > 0.9, (before, after)


def test_predictor_with_crf_gives_the_crf_posterior(data, predictor):
    pytest.importorskip("pydensecrf.densecrf")
    image = data["frames"][0]
    plain = predictor.predict(image)
    refined = Predictor(predictor.model, predictor.cfg, refine="crf").predict(image)
    assert refined.masks.shape == plain.masks.shape == (1, 64, 96)
    posterior = refine_mask(image, plain.masks[0])
    np.testing.assert_allclose(refined.masks[0], posterior, atol=1e-6)
    assert refined.cells.tolist() == plain.cells.tolist()


def test_grabcut_snaps_a_blurry_mask_to_the_coloured_square():
    image, square, soft = _square_scene()
    refined = refine_grabcut(image, soft)
    assert refined.dtype == np.float32 and refined.shape == square.shape
    label = refined >= 0.5
    np.testing.assert_allclose(refined, 0.5 * (soft + label), atol=1e-6)  # the mean of the mask and GrabCut's label
    before, after = _iou(soft >= 0.5, square), _iou(label, square)
    assert before < 0.7 and after > 0.95, (before, after)
    # the same result when GrabCut works on a shrunk rectangle (large images)
    small = refine_grabcut(image, soft, max_side=40) >= 0.5
    assert _iou(small, square) > 0.85
    # no object seed: the mask comes back as it was; bad inputs are named
    faint = 0.3 * soft
    np.testing.assert_array_equal(refine_grabcut(image, faint), faint)
    with pytest.raises(InpaintsegError, match="does not match image"):
        refine_grabcut(image, soft[:10])
    with pytest.raises(InpaintsegError, match="RGB uint8"):
        refine_grabcut(image.astype(np.float32), soft)


def test_predictor_refines_with_grabcut_by_default(data, predictor):
    image = data["frames"][0]
    plain = predictor.predict(image)
    refined = Predictor(predictor.model, predictor.cfg).predict(image)
    assert refined.cells.tolist() == plain.cells.tolist()
    np.testing.assert_allclose(refined.masks[0], refine_grabcut(image, plain.masks[0]), atol=1e-6)


# -- sources and outputs --------------------------------------------------------------------------------------


def _pngs(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


def test_every_source_kind(data, tmp_path):
    davis, root = data["davis"], data["root"]
    image_file = davis / "JPEGImages" / "seq001" / "00003.jpg"
    expect = {
        "image": (image_file, ["seq001/00003.png"]),
        "folder": (davis / "JPEGImages" / "seq001", [f"seq001/{i:05d}.png" for i in range(6)]),
        "davis": (davis, [f"seq{s:03d}/{i:05d}.png" for s in range(2) for i in range(6)]),
        "video": (root / "videos" / "clip.mp4", [f"clip/{i:05d}.png" for i in range(6)]),
        "videos": (root / "videos", [f"clip/{i:05d}.png" for i in range(6)] + [f"other/{i:05d}.png" for i in range(4)]),
    }
    for kind, (source, names) in expect.items():
        out = predict_source(data["model"], source, tmp_path / kind, batch=4, progress=False)
        assert _pngs(out) == sorted(names), kind
        detections = json.loads((out / "detections.json").read_text())
        assert sorted(f"{d['sequence']}/{d['frame']}.png" for d in detections) == sorted(names), kind
        mask = read_mask(out / names[0])
        assert mask.shape == (64, 96) and mask.dtype == np.uint8, kind


def test_every_output_kind_on_a_video(data, tmp_path):
    from pycocotools.coco import COCO

    video = data["root"] / "videos" / "clip.mp4"
    out = predict_source(data["model"], video, tmp_path / "out", batch=4, progress=False,
                         save="masks,coco,overlay,video,grid", max_objects=2, nms_iou=0.9, min_prob=0.0)
    coco = COCO(str(out / "coco.json"))
    assert len(coco.getImgIds()) == 6 and coco.loadCats([1])[0]["name"] == "object"
    assert len(coco.getAnnIds()) == 12  # 2 objects per frame with this permissive NMS on an untrained model
    for image_id in coco.getImgIds():
        info = coco.loadImgs([image_id])[0]
        assert (info["height"], info["width"]) == (64, 96)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert all(a["iscrowd"] == 0 and isinstance(a["segmentation"]["counts"], str) for a in anns)
        union = np.zeros((64, 96), bool)
        for a in anns:
            decoded = coco.annToMask(a).astype(bool)
            assert a["area"] == decoded.sum()
            union |= decoded
        png = read_mask(out / info["sequence"] / f"{info['frame']}.png")
        np.testing.assert_array_equal(union, png >= 128)  # mask >= 0.5 <=> round(255 * mask) >= 128
    for kind in ("overlay", "grid"):
        files = sorted((out / kind / "clip").glob("*.jpg"))
        assert [f.stem for f in files] == [f"{i:05d}" for i in range(6)], kind
        assert read_image(files[0]).shape == (64, 96, 3)
    assert video_info(out / "overlay" / "clip.mp4") == (6, 10.0, (64, 96))
    assert not list(out.rglob("*.tmp"))


def test_overlay_video_of_an_image_sequence_has_even_sides(data, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, im in enumerate(data["frames"][:3]):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(im[:63, :95], cv2.COLOR_RGB2BGR))
    out = predict_source(data["model"], folder, tmp_path / "out", progress=False, save="video")
    assert video_info(out / "overlay" / "odd.mp4") == (3, 24.0, (64, 96))
    assert not (out / "detections.json").exists()


def test_prediction_save_and_to_coco(data, predictor, tmp_path):
    pred = Predictor(predictor.model, predictor.cfg, max_objects=2, nms_iou=1.0, min_prob=0.0).predict(
        data["frames"][1])
    paths = pred.save(tmp_path, "f", objects=True)
    assert [p.name for p in paths] == ["f.png", "f_0.png", "f_1.png"]
    np.testing.assert_array_equal(read_mask(paths[0]), np.round(pred.mask * 255).astype(np.uint8))
    anns = pred.to_coco(image_id=7, threshold=0.3, first_id=10)
    assert [a["id"] for a in anns] == [10, 11] and {a["image_id"] for a in anns} == {7}
    x0, y0, x1, y1 = pred.boxes[1].tolist()
    assert anns[1]["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
    assert anns[1]["area"] == int((pred.masks[1] >= 0.3).sum())


def test_cli_predict(data, tmp_path, capsys):
    video = data["root"] / "videos" / "clip.mp4"
    out = tmp_path / "cli"
    assert main(["predict", str(data["model"]), str(video), "--out", str(out), "--save", "masks,coco",
                 "--max-objects", "2", "--batch", "3"]) == 0
    assert (out / "coco.json").exists() and len(_pngs(out)) == 6
    assert main(["predict", str(data["model"]), str(video), "--out", str(out), "--save", "movie"]) == 2
    assert "--save" in capsys.readouterr().err


# -- streaming ----------------------------------------------------------------------------------------------


def test_predict_video_streams(data, predictor, monkeypatch):
    pulled = []
    original = video_module.VideoSequence.__iter__

    def counting(self):
        for frame in original(self):
            pulled.append(frame.index)
            yield frame

    monkeypatch.setattr(video_module.VideoSequence, "__iter__", counting)
    stream = predictor.predict_video(data["root"] / "long.mp4", batch=4)
    first = next(stream)
    assert first.masks.shape == (1, 64, 96)
    assert len(pulled) == 4  # one batch decoded, not the whole video
    rest = list(stream)
    assert len(rest) == 29 and pulled == list(range(30))
    with pytest.raises(InpaintsegError, match="not a video"):
        next(predictor.predict_video(data["davis"]))


# -- sharding across processes -------------------------------------------------------------------------------


class _Seq:
    def __init__(self, name, n):
        self.name, self.n = name, n

    def __len__(self):
        return self.n


class _Source:
    def __init__(self, lengths):
        self.sequences = [_Seq(f"s{i}", n) for i, n in enumerate(lengths)]


def _frames_of(shards):
    return [(s.sequence.name, i) for s in shards for i in range(s.start, s.stop)]


def test_shard_source_splits_sequences_then_frames():
    src = _Source([5, 3, 4, 9])
    shards = [shard_source(src, r, 2) for r in range(2)]
    # longest first to the least loaded rank: s3 (9) -> 0, s0 (5) -> 1, s2 (4) -> 1 (9 vs 9), s1 (3) -> 0 (tie)
    assert [[s.sequence.name for s in part] for part in shards] == [["s1", "s3"], ["s0", "s2"]]
    assert all(s.whole for part in shards for s in part)
    everything = sorted(f for part in shards for f in _frames_of(part))
    assert everything == sorted((f"s{i}", k) for i, n in enumerate([5, 3, 4, 9]) for k in range(n))
    one = _Source([10])
    parts = [shard_source(one, r, 3) for r in range(3)]
    assert [(p[0].start, p[0].stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]
    two = _Source([2])  # more ranks than frames: ranges [0, 0), [0, 1), [1, 2); rank 0 is idle
    assert [[(s.start, s.stop) for s in shard_source(two, r, 3)] for r in range(3)] == [[], [(0, 1)], [(1, 2)]]
    assert shard_source(one, 0, 1) == [Shard(one.sequences[0], 0, 10)]


def _run_as_ranks(monkeypatch, world, **kwargs):
    """predict_source as each torchrun rank in turn, highest rank first (barriers are no-ops in one process,
    so rank 0 merges after every other rank has written its part)."""
    for rank in reversed(range(world)):
        monkeypatch.setattr(distributed, "setup", lambda rank=rank: (rank, world))
        predict_source(**kwargs)


@pytest.mark.parametrize("source", ["videos/clip.mp4", "davis"])
def test_sharded_prediction_equals_single_process(data, tmp_path, monkeypatch, source):
    path = data["root"] / source if source != "davis" else data["davis"]
    common = dict(model_path=data["model"], source=path, batch=1, progress=False, save="masks,coco,video")
    single = predict_source(out=tmp_path / "single", **common)
    _run_as_ranks(monkeypatch, 2, out=tmp_path / "sharded", **common)
    sharded = tmp_path / "sharded"
    assert _pngs(sharded) == _pngs(single)
    for name in _pngs(single):
        np.testing.assert_array_equal(read_mask(sharded / name), read_mask(single / name))
    for name in ("detections.json", "coco.json"):
        assert json.loads((sharded / name).read_text()) == json.loads((single / name).read_text()), name
    assert not list(sharded.glob("*rank*")) and not list(sharded.rglob("*rank*.mp4"))
    for clip in (single / "overlay").glob("*.mp4"):
        assert video_info(sharded / "overlay" / clip.name)[:2] == video_info(clip)[:2]


def test_concat_videos(data, tmp_path):
    frames = data["frames"]
    parts = []
    for k, chunk in enumerate((frames[:4], frames[4:], frames[1:5])):  # as torchrun ranks write them
        writer = VideoWriter(tmp_path / f"part{k}.mp4", fps=12)
        for im in chunk:
            writer.write(im)
        writer.close()
        parts.append(tmp_path / f"part{k}.mp4")
    concat_videos(parts, tmp_path / "all.mp4")
    assert video_info(tmp_path / "all.mp4") == (10, 12.0, (64, 96))
    with av.open(str(tmp_path / "all.mp4")) as container:
        pts = [f.pts for f in container.decode(video=0)]
    assert pts == sorted(pts) and len(set(np.diff(pts))) == 1  # evenly spaced, no gap between parts
