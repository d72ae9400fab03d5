"""inpaintseg: self-supervised detection and segmentation of moving objects via background inpainting.

Implements Katircioglu et al., "Self-Supervised Human Detection and Segmentation via Background
Inpainting" (TPAMI 2021). See README.md and docs/.
"""

from inpaintseg.errors import InpaintsegError

__version__ = "0.1.0"
__all__ = ["InpaintsegError", "__version__"]
