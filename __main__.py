"""``python -m inpcodec`` and the ``inpcodec`` command.

Ctrl-C at any point exits with code 130 and one line: while the command's modules load
(the signal is noted and answered once they have, under a second), while it runs
(``cli._clean_errors``) and while the interpreter tears down after it (SIGINT is ignored
once the command has finished: its file is complete).
"""

import signal
import sys


def _interrupted() -> None:
    sys.stderr.write("inpcodec: interrupted\n")
    sys.exit(130)


def main() -> None:
    noted = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # a background job keeps ignoring it
        # a KeyboardInterrupt inside an import can leave the interpreter to kill itself
        # with SIGINT at exit (code -2) whatever we catch: note the signal instead
        signal.signal(signal.SIGINT, lambda *_: noted.append(True))
    try:
        from inpcodec.cli import main as cli_main  # noqa: PLC0415 (the slow start-up)
    finally:
        signal.signal(signal.SIGINT, previous)
    if noted:
        _interrupted()
    try:
        cli_main(prog_name="inpcodec")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
