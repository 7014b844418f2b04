"""Observability adapters: log formatting and Prometheus metrics.

Import rule: ``reelserve.observability`` builds on ``reelserve.core`` only (the ports it
implements) and third-party libraries; the composition roots (``create_app``,
``cli/embedded.py``, ``cli/main.py``) wire it in. Services never import it.
"""
