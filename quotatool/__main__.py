"""Run quotatool as ``python -m quotatool``."""

from quotatool.cli.app import main

main()
