"""Who may do what: accounts, sessions and the authorisation policy of the web app.

- :mod:`~worldgen.web.auth.passwords`: argon2id hashing off the event loop, one verify per login
  whether or not the account exists.
- :mod:`~worldgen.web.auth.policy`: the one policy table (:func:`~.policy.decide`) and the one
  guard (:class:`~.policy.Guard`) that every HTTP route, tile route and WebSocket asks.
- :mod:`~worldgen.web.auth.sessions`: session cookies and the signed-in user of a request.
- :mod:`~worldgen.web.auth.services`: the services an app builds once
  (:class:`~.services.SecurityServices`) and the checks routes call (``authorize``,
  ``rate_limit``).
- :mod:`~worldgen.web.auth.sockets`: what a WebSocket needs: its author, its view check, the
  watch that closes it when its access ends, and the gate of chat messages.

The HTTP-level defences that need no knowledge of users (cross-site checks, security headers,
body bounds) live in :mod:`worldgen.web.hardening`; ``docs/security.md`` explains the threat
model.
"""
