"""``python -m reelserve`` is the ``reelserve`` command."""

from reelserve.cli.main import main

main()
