"""The infinite world: macro fields, the Wang-patch base layer, refinement blocks and map tiles.

Pure: coordinates in, cells out. Knows nothing of HTTP or Redis (see docs/world.md). Modules, from
the leaf up: ``spec`` (:class:`WorldSpec`, the only configuration) · ``plan`` (pure block/piece
arithmetic) · ``macro``/``_noise``/``hashing`` · ``model`` · ``patches`` · ``blocks`` (``World``)
· ``render`` (tiles) · ``api`` (build a world from a spec; JSON and PNG out) · ``pool`` (the one
process pool).
"""
