"""On-device refinement of the router: labels from the ledger, a classifier-head
baseline, allocator SFT then GRPO with LoRA, decomposer SFT, adapters exported
where inference runs (GGUF for llama.cpp, mlx-lm's format), adopted only when better.

Heavy libraries (torch, transformers, peft, scikit-learn, gguf, mlx) are
imported inside the functions that need them, so importing this package is cheap.
"""
