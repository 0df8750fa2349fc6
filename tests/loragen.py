"""Write a small random GGUF LoRA adapter for a GGUF model (test helper).

It touches every attention query projection with a rank-r update, enough to
change the model's output measurably.
"""

from pathlib import Path

import numpy as np


def make_lora(path: Path, base: Path, *, rank: int = 4, scale: float = 0.05, seed: int = 0) -> Path:
    import gguf

    reader = gguf.GGUFReader(str(base))
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    rng = np.random.default_rng(seed)
    for t in reader.tensors:
        if t.name.endswith("attn_q.weight"):
            n_in, n_out = int(t.shape[0]), int(t.shape[1])
            stem = t.name[: -len(".weight")]
            writer.add_tensor(f"{stem}.weight.lora_a", (rng.standard_normal((rank, n_in)) * scale).astype(np.float32))
            writer.add_tensor(f"{stem}.weight.lora_b", (rng.standard_normal((n_out, rank)) * scale).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
