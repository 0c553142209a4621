"""The Wave Function Collapse engine: tilesets, overlapping patterns, rule tables and the solver.

Knows nothing of worlds, the web or Redis.
"""
