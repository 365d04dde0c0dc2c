"""inpcodec: baselines (see the project's open issues)."""
