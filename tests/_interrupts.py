"""A Ctrl-C swallowed on the way, as llvmlite's ctypes callback does while Numba compiles:
the CLI's SIGINT handler runs (and keeps its flag), the KeyboardInterrupt goes no further."""

import signal


def swallowing_an_interrupt(fn, calls=None):
    """``fn`` preceded by a SIGINT that is raised and swallowed; ``calls`` (a list) counts
    the calls."""

    def wrapped(*args, **kwargs):
        if calls is not None:
            calls.append(1)
        try:
            signal.raise_signal(signal.SIGINT)  # the CLI's handler runs here
        except KeyboardInterrupt:
            pass  # what a ctypes callback does with it
        return fn(*args, **kwargs)

    return wrapped
