"""Compile C on this machine and load it in-process with cffi (``compiler``)."""
