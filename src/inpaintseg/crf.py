"""Dense CRF refinement of a soft mask (Kraehenbuehl & Koltun, "Efficient Inference in Fully Connected CRFs
with Gaussian Edge Potentials", NeurIPS 2011), as post-processing of the segmenter's output.

Two labels (background, object). The unary term is -log of the soft mask clipped to [``clip``, 1 - ``clip``]
(so no pixel is certain); the pairwise terms and their defaults are the ones used in pydensecrf's README and
examples, which most papers (this one included) use unchanged:

- a Gaussian (smoothness) kernel on pixel position: ``sxy=3``, ``compat=3``;
- a bilateral (appearance) kernel on position and colour: ``sxy=80``, ``srgb=13``, ``compat=10``;
- 5 mean-field iterations.

pydensecrf2 is an optional dependency (``pip install 'inpaintseg[crf]'``); it is imported only when a CRF is
actually run, and a missing install raises :class:`~inpaintseg.errors.InpaintsegError` saying so.
"""

from __future__ import annotations

import numpy as np

from inpaintseg.errors import InpaintsegError

INSTALL_HINT = "the dense CRF needs pydensecrf2: install inpaintseg[crf] (pip install 'inpaintseg[crf]')"


def _import_densecrf():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        raise InpaintsegError(INSTALL_HINT) from None
    return dcrf


def require_crf() -> None:
    """Raise :class:`InpaintsegError` ("install inpaintseg[crf]") unless pydensecrf2 can be imported."""
    _import_densecrf()


def refine_mask(image: np.ndarray, soft_mask: np.ndarray, *, gaussian_sxy: float = 3.0, gaussian_compat: float = 3.0,
                bilateral_sxy: float = 80.0, bilateral_srgb: float = 13.0, bilateral_compat: float = 10.0,
                iterations: int = 5, clip: float = 0.05) -> np.ndarray:
    """Refine a soft mask with a fully connected CRF on the image's colours.

    Args:
        image: RGB uint8 (H, W, 3), the frame the mask belongs to (pixel coordinates, row 0 = top).
        soft_mask: float (H, W) object probability in [0, 1] (e.g. ``Prediction.masks[k]``).
        gaussian_sxy, gaussian_compat: spatial standard deviation (pixels) and Potts weight of the smoothness
            kernel.
        bilateral_sxy, bilateral_srgb, bilateral_compat: spatial (pixels) and colour (0-255 RGB units) standard
            deviations and Potts weight of the appearance kernel.
        iterations: mean-field iterations.
        clip: probabilities are clipped to [clip, 1 - clip] before -log (the unary term).

    Returns:
        float32 (H, W) in [0, 1]: the object label's marginal after mean-field inference (> 0.5 = the most
        probable label is object). Soft, so a threshold can still be chosen afterwards (DAVIS protocol).

    Raises:
        InpaintsegError: pydensecrf2 is not installed, or the shapes do not match.
    """
    dcrf = _import_densecrf()
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InpaintsegError(f"refine_mask: image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if soft_mask.shape != (h, w):
        raise InpaintsegError(f"refine_mask: mask shape {soft_mask.shape} does not match image {(h, w)}")
    p = np.clip(soft_mask.astype(np.float32), clip, 1.0 - clip)
    unary = -np.log(np.stack([1.0 - p, p]).reshape(2, -1))  # (labels, H*W), float32
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=gaussian_sxy, compat=gaussian_compat)
    crf.addPairwiseBilateral(sxy=bilateral_sxy, srgb=bilateral_srgb,
                             rgbim=np.require(image, np.uint8, ["C", "W"]), compat=bilateral_compat)
    # (np.require: pydensecrf wants a writeable C-contiguous buffer; decoded images are often read-only)
    q = np.asarray(crf.inference(iterations), dtype=np.float32).reshape(2, h, w)
    return q[1]
