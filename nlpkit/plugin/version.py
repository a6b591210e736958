"""The core's version, which plugins declare their dependency against and checkpoints record."""

__version__ = "0.1.0"
