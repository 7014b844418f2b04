"""Pure domain: plain functions over plain data.

Import rule: ``reelserve.core`` imports nothing else of reelserve, and does no I/O
(no SQL, no HTTP, no files, no torch).
"""
