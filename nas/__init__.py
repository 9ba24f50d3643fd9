"""The NAS platform: graph IR, torch compiler, ONNX export and the ``nas`` CLI.

Importing :mod:`nas` is cheap: torch, onnx and networkx load only when a submodule that needs them is imported.
"""

__version__ = "0.1.0"
