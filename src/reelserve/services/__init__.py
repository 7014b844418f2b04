"""Use cases with their ports injected: submit, read, cancel, work, keys, credits.

Import rule: ``reelserve.services`` imports ``reelserve.core`` and ``reelserve.models``
only; adapters are handed in by the composition roots.
"""
