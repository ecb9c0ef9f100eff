"""Compile generated and runtime C: on the host (cffi) and for targets."""
