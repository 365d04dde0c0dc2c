"""The learned mask network as a registered mask encoder (registering imports no torch)."""

from __future__ import annotations

from inpcodec.codec.encoders import MaskEncoder, register
from inpcodec.codec.limits import require_learned

#: How the codec binarises learned masks: Floyd-Steinberg dithering of the network's
#: confidences beat the paper's coin flip, even its best of 30, on the Kodak crops and the
#: cameraman (benchmarks/RESULTS.md, "Learned masks against the classical encoders"), and
#: costs no inpainting.
BINARISATION = "dither"


def _make(luma, density, *, levels=None, seed=0, progress=False, weights=None, samples=None,
          binarisation=None, precision="auto"):
    require_learned("the learned encoder")
    from .inference import learned_mask, load_mask_network  # noqa: PLC0415 (imports torch)

    return learned_mask(luma, density, samples=1 if samples is None else samples,
                        binarisation=binarisation or BINARISATION, seed=seed,
                        network=load_mask_network(weights, precision=precision))


register(MaskEncoder(
    "learned", _make, "mask U-net of Alt, Peter and Weickert (2021), one forward pass",
    options=("weights", "precision", "samples", "binarisation")))


def _make_tree(luma, density, *, levels=None, seed=0, progress=False, weights=None,
               precision="auto"):
    require_learned("the tree-learned encoder")
    from .tree_map import learned_tree, load_tree_map_network  # noqa: PLC0415 (torch)

    return learned_tree(luma, density,
                        network=load_tree_map_network(weights, precision=precision))


register(MaskEncoder(
    "tree-learned", _make_tree, "quadtree split by the tree-map U-net's predicted "
    "inpainting errors, one forward pass, then pruned at lambda as tree-rdo (with "
    "--density or --weights: no pruning, no inpainting; tree-coded positions)",
    options=("weights", "precision")))
