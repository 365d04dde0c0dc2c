"""``python -m inpcodec``: the command line."""

from inpcodec.cli import main

main(prog_name="inpcodec")
