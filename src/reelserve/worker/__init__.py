"""The worker: claims tasks, runs an engine, writes the MP4, completes or fails the task.

Import rule: ``reelserve.worker`` imports ``core``, ``models``, ``engines``, ``media`` and
``services``.
"""
