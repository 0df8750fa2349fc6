"""On-device refinement of the router: classifier head, allocator SFT/GRPO, decomposer SFT.

Heavy libraries (torch, transformers, peft, scikit-learn, mlx) are imported
inside the functions that need them, so importing this package is cheap.
"""
