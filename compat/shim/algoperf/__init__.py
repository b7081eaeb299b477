"""kronbench's stand-in for the official ``algoperf`` package (used only when it is not installed)."""

__version__ = "0.6.0+kronbench"
