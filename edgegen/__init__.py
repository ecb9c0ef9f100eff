"""edgegen: compress a trained PyTorch CNN and lower it to bit-exact int8 C."""

__version__ = "0.1.0"
