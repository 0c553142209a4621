"""The infinite world: macro fields, the Wang-patch base layer, refinement blocks and map tiles.

Pure: coordinates in, cells out. Knows nothing of HTTP or Redis (see docs/world.md).
"""
