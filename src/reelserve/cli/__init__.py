"""The ``reelserve`` command.

Import rule: server packages are imported lazily inside the commands that need them, so
``reelserve --help`` stays fast.
"""
