"""Run by the llama.cpp load probe in a subprocess: load the library and the
probe model, decode a batch and one token, and report each stage on stdout.

Run as a plain script (no r2local imports), so that a crash here is a crash
of llama.cpp and nothing else. Usage: python _probe_child.py MODEL MODE,
MODE "default" or "no-repack" (llama.cpp's extra CPU buffer types off: no
weight repacking, no AMX).
"""

import json
import math
import sys


def say(stage: str, **extra: object) -> None:
    print(json.dumps({"stage": stage, **extra}), flush=True)


def main() -> int:
    model_path, mode = sys.argv[1], sys.argv[2]
    import llama_cpp as C

    C.llama_backend_init()
    say("imported", version=getattr(C, "__version__", None), system_info=C.llama_print_system_info().decode(errors="replace"))
    mp = C.llama_model_default_params()
    mp.use_extra_bufts = mode == "default"
    model = C.llama_model_load_from_file(model_path.encode(), mp)
    if not model:
        say("failed", error="the probe model did not load")
        return 3
    cp = C.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = 128, 64, 64
    cp.n_threads, cp.n_threads_batch = 1, 1
    ctx = C.llama_init_from_model(model, cp)
    if not ctx:
        say("failed", error="no llama.cpp context")
        return 3
    say("loaded")
    n = 48  # a batch of several tokens takes the tiled matrix path (AMX where built in)
    batch = (C.llama_token * n)(*[3 + (i * 7) % 256 for i in range(n)])
    if C.llama_decode(ctx, C.llama_batch_get_one(batch, n)) != 0:
        say("failed", error="llama_decode of a batch failed")
        return 3
    one = (C.llama_token * 1)(4)
    if C.llama_decode(ctx, C.llama_batch_get_one(one, 1)) != 0:
        say("failed", error="llama_decode of one token failed")
        return 3
    logits = C.llama_get_logits_ith(ctx, -1)
    if not all(math.isfinite(logits[i]) for i in range(8)):
        say("failed", error="the logits are not finite numbers")
        return 3
    C.llama_free(ctx)
    C.llama_model_free(model)
    say("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
