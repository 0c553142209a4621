"""Redis storage: the only package that speaks Redis.

``keys`` names every key; ``client`` connects with bounded retries; ``embedded`` runs the default
Valkey server; ``worlds`` and ``tiles`` are the repositories the web layer uses.
"""
