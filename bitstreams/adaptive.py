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


def _laplace(levels: int):
    import constriction  # noqa: PLC0415

    # constriction 0.5.0's quantised models take no ``perfect`` flag (Bernoulli and
    # Categorical do, and get perfect=False); their parameters are float64 here anyway
    return constriction.stream.model.QuantizedLaplace(-(levels - 1), levels - 1)


def laplace_encode(run, levels: int, q):
    """Words of the residuals that ``run(q, coder)`` hands to ``coder(residuals, scales)``,
    each coded with the quantised Laplace model (mean 0) of the value coders."""
    import constriction  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    enc = constriction.stream.queue.RangeEncoder()
    model = _laplace(levels)

    def coder(res, scales):
        enc.encode(res.astype(np.int32), model, np.zeros(res.size), scales)
        return res

    run(q, coder)
    return enc.get_compressed()


def laplace_decode(run, levels: int, words):
    """Inverse of :func:`laplace_encode`: what ``run(None, coder)`` returns."""
    import constriction  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    dec = constriction.stream.queue.RangeDecoder(np.asarray(words, np.uint32))
    model = _laplace(levels)

    def coder(_, scales):
        return np.asarray(dec.decode(model, np.zeros(scales.size), scales), np.int64)

    return run(None, coder)


def laplace_encode_values(run, levels: int, q):
    """Words of the values that ``run(q, coder)`` hands to ``coder(values, means,
    scales)``, each coded with the quantised Laplace model over [0, levels - 1] of that
    mean and scale (the edge bins take the tails)."""
    import constriction  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    enc = constriction.stream.queue.RangeEncoder()
    model = constriction.stream.model.QuantizedLaplace(0, levels - 1)

    def coder(vals, means, scales):
        enc.encode(vals.astype(np.int32), model, means, scales)
        return vals

    run(q, coder)
    return enc.get_compressed()


def laplace_decode_values(run, levels: int, words):
    """Inverse of :func:`laplace_encode_values`: what ``run(None, coder)`` returns."""
    import constriction  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    dec = constriction.stream.queue.RangeDecoder(np.asarray(words, np.uint32))
    model = constriction.stream.model.QuantizedLaplace(0, levels - 1)

    def coder(_, means, scales):
        return np.asarray(dec.decode(model, means, scales), np.int64)

    return run(None, coder)
