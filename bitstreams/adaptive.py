"""What the adaptive entropy coders share: coding a run of symbols in chunks of doubling
size, so that the context statistics are updated between chunks (the model adapts from the
first symbols at the cost of about log2(n) vectorised coder calls)."""


def doubling_chunks(n: int, first: int = 1):
    """(start, stop) of chunks of sizes first, 2 first, 4 first, ... covering range(n)."""
    start, size = 0, first
    while start < n:
        yield start, min(n, start + size)
        start += size
        size *= 2
