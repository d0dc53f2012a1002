"""I/O against target systems, one module per system; every action is safe to repeat."""
