"""On-device refinement of the router (see DESIGN.md, "On-device refinement").

Heavy libraries (torch, transformers, peft, gguf, mlx) are imported inside the
functions that need them.
"""
