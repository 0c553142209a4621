"""Background jobs on a Redis job queue (Dramatiq): large exports and pre-rendering (issue 15).

A layer between ``world``/``store`` (which it uses) and ``web``/``cli`` (which use it):

* :mod:`.broker`: the Redis broker and the one job actor, built from settings; ``JobQueue``
  (the web app's sending side);
* :mod:`.runner`: one attempt at a job, its progress and its end (``done`` or ``failed``);
* :mod:`.export`: planning and computing an export band by band, and pre-rendering tiles;
* :mod:`.png`: a PNG written band by band;
* :mod:`.worker`: the worker process (``worldgen worker``) and ``serve``'s worker child.

Job records and results live in Redis through :mod:`worldgen.store.jobs`.
"""
