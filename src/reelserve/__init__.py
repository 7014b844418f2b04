"""reelserve: a self-hostable video generation service speaking the skills.video API."""

__version__ = "0.1.0"
