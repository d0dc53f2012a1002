"""The KeyRotation controller's pure logic: validation, triggers, consumers and the rotation's stages.

`stages.decide` is the entry point; `moves` holds what it asks the I/O layer for.
"""
