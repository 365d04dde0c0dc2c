"""The inpcodec file format and its entropy coding (constriction).

``container``: header, sections, CRC32 (specification in FORMAT.md);
``mask_coder``: adaptive quadtree coding of the binary mask;
``value_coder``: coarse-to-fine predictive coding of the quantised values.
"""

from .container import FormatError

__all__ = ["FormatError"]
