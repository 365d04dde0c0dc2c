"""inpcodec: learned_masks (see the project's open issues)."""
