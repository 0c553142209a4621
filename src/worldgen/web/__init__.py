"""The web app: ``create_app(settings)`` in :mod:`worldgen.web.app` (see docs/architecture.md).

``web`` wires the pure world layer (:mod:`worldgen.world`) to storage (:mod:`worldgen.store`)
over HTTP; it holds no domain logic of its own.
"""
