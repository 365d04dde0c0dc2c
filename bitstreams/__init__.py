"""inpcodec: bitstreams (see the project's open issues)."""
