"""Check an exported adapter against the framework it was trained in: next-token
distributions of torch+PEFT (the reference) and llama.cpp+GGUF LoRA on the
router's own scoring prompts. Used by the tests and ``adapter_bench``.

The GGUF base is quantised while torch runs its dequantised weights, and
llama.cpp quantises activations for its quantised matmuls, so even the two bases
differ a little (the "floor"). ``compare`` reports the floor next to the adapter's
error and checks the adapter's *change* of the logits separately, which the
quantisation barely touches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from r2local.routing.thresholds import LABELS, score_messages

STEPS = (
    ("What is 17 * 23?", "Multiply 17 by 23."),
    ("Who wrote Hamlet?", "Name the author of Hamlet."),
    ("Prove that there are infinitely many primes.", "Assume finitely many primes and derive a contradiction."),
    ("Plan a 3-day trip to Rome on a budget.", "List three free sights in Rome."),
    ("Summarise the causes of the First World War.", "Explain how the alliance system turned a local war into a world war."),
    ("Write a Python function that checks whether a string is a palindrome.", "Write the function and one test."),
)
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


def prompts() -> list[list[dict[str, str]]]:
    """The allocator's scoring prompt for each sample step."""
    return [score_messages(q, s) for q, s in STEPS]


# -- torch side ----------------------------------------------------------------
def load_hf_from_gguf(gguf_path: str | Path) -> Any:
    """The GGUF's weights, dequantised to float32, as a transformers model ready for PEFT."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(gguf_path)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:  # trainers refuse a "quantised" model
        model.hf_quantizer.remove_quantization_config(model)
    return model.eval()


def random_lora(model: Any, out_dir: str | Path, *, rank: int = 8, modules: Sequence[str] = ATTENTION,
                std: float = 0.02, seed: int = 0) -> Any:
    """Wrap ``model`` in a PEFT LoRA whose B is random (PEFT starts it at zero, a no-op),
    save it to ``out_dir`` and return the PeftModel. A and B both come from ``seed``
    (PEFT would draw A from torch's global generator)."""
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(modules), lora_dropout=0.0))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_A" in name:  # PEFT's kaiming-uniform bound
                bound = param.shape[1] ** -0.5
                param.copy_((torch.rand(param.shape, generator=gen) * 2 - 1) * bound)
            elif "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    peft_model.save_pretrained(str(out_dir))
    return peft_model.eval()


def torch_logits(model: Any, tokens: Sequence[int]) -> np.ndarray:
    """Next-token logits after ``tokens`` (float64)."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([list(tokens)])).logits[0, -1]
    return out.double().numpy()


def torch_pair(peft_model: Any, token_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(base, adapter) logits per prompt from one PeftModel."""
    with_adapter = np.stack([torch_logits(peft_model, t) for t in token_lists])
    with peft_model.disable_adapter():
        base = np.stack([torch_logits(peft_model, t) for t in token_lists])
    return base, with_adapter


# -- llama.cpp side ------------------------------------------------------------
def open_llama(gguf_path: str | Path, lora: str | Path | None = None, n_ctx: int = 512) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=1, n_threads_batch=1,
                 lora_path=str(lora) if lora else None, verbose=False)


def chat_tokens(llm: Any, messages: list[dict[str, str]]) -> list[int]:
    """The prompt as LlamaCppBackend builds it: the GGUF's own chat template."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = llm.token_eos(), llm.token_bos()
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
    )
    result = formatter(messages=messages)
    return llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)


def llama_logits(llm: Any, tokens: Sequence[int]) -> np.ndarray:
    """Next-token logits after ``tokens`` from a fresh context (float64)."""
    import llama_cpp

    llm.reset()
    llm.eval(list(tokens))
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64)


def label_ids(llm: Any, labels: Sequence[str] = LABELS) -> list[int]:
    return [llm.tokenize(label.encode("utf-8"), add_bos=False, special=False)[0] for label in labels]


# -- comparison ----------------------------------------------------------------
def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean over prompts of KL(P || Q) in nats, P and Q given as logits (rows = prompts)."""
    lp, lq = log_softmax(np.atleast_2d(p_logits)), log_softmax(np.atleast_2d(q_logits))
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=-1)))


# A label lead (log-odds between the top two labels) below this can flip on
# numerical noise; ``compare`` raises it to twice the lead noise measured between
# the two bases (0.21 nats for SmolLM2's Q4_1, 0.14 for Qwen's Q5_0/Q4_K mix).
MARGIN = 0.2


@dataclass(frozen=True)
class Comparison:
    kl_adapter: float  # KL(torch+PEFT || llama.cpp+GGUF LoRA)
    kl_floor: float  # KL(torch base || llama.cpp base): the quantisation floor
    kl_shift: float  # KL(llama.cpp base || llama.cpp+LoRA): how much the adapter changes it
    delta_error: float  # |d_llama - d_torch| / |d_torch|, d = log-prob change made by the adapter
    labels_agree: int  # decisive prompts where both runtimes pick the same label under the adapter
    decisive: int  # prompts where torch's top label leads by more than max(MARGIN, 2 * label_floor)
    labels_changed: int  # prompts where the adapter changes torch's label
    label_floor: float  # largest change of the top-two label lead between the two bases (nats)
    label_error: float  # the same between torch+PEFT and llama.cpp+LoRA
    n: int


def _lead_noise(reference: np.ndarray, other: np.ndarray) -> float:
    """Largest change, from ``reference`` to ``other``, of the lead of the reference's
    top label over its second (rows = prompts, columns = label logits)."""
    order = np.argsort(reference, axis=1)
    rows = np.arange(len(reference))
    first, second = order[:, -1], order[:, -2]
    lead_ref = reference[rows, first] - reference[rows, second]
    lead_other = other[rows, first] - other[rows, second]
    return float(np.abs(lead_ref - lead_other).max())


def compare(torch_base: np.ndarray, torch_lora: np.ndarray, llama_base: np.ndarray, llama_lora: np.ndarray,
            labels: Sequence[int]) -> Comparison:
    """Rows are prompts, columns the vocabulary (both runtimes share the tokenizer)."""
    d_torch = log_softmax(torch_lora) - log_softmax(torch_base)
    d_llama = log_softmax(llama_lora) - log_softmax(llama_base)
    # Weight by the adapted distribution: tokens nobody would pick should not dominate.
    w = np.exp(log_softmax(torch_lora))
    err = np.sqrt((w * (d_llama - d_torch) ** 2).sum() / (w * d_torch**2).sum())
    cols = list(labels)
    label_floor = _lead_noise(torch_base[:, cols], llama_base[:, cols])
    top2 = np.sort(torch_lora[:, cols], axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > max(MARGIN, 2 * label_floor)
    picks_torch = torch_lora[:, cols].argmax(axis=1)
    agree = picks_torch == llama_lora[:, cols].argmax(axis=1)
    return Comparison(
        kl_adapter=kl(torch_lora, llama_lora), kl_floor=kl(torch_base, llama_base),
        kl_shift=kl(llama_base, llama_lora), delta_error=float(err),
        labels_agree=int((agree & decisive).sum()), decisive=int(decisive.sum()),
        labels_changed=int((picks_torch != torch_base[:, cols].argmax(axis=1)).sum()),
        label_floor=label_floor, label_error=_lead_noise(torch_lora[:, cols], llama_lora[:, cols]),
        n=len(torch_base),
    )


# -- one end-to-end check --------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """A random PEFT LoRA on a GGUF base, its GGUF export, and the logits to check it with."""

    base: Path
    peft_dir: Path
    gguf: Path
    tokens: list[list[int]]
    labels: list[int]
    torch_base: np.ndarray
    torch_lora: np.ndarray
    llama_base: np.ndarray
    export_s: float


def build_reference(base: str | Path, folder: str | Path, *, modules: Sequence[str], std: float,
                    rank: int = 8, seed: int = 0) -> Reference:
    """Load ``base`` in torch, add a random LoRA, export it to GGUF, and compute the
    torch (base, adapted) and llama.cpp base logits on the scoring prompts."""
    from r2local.train.export import peft_to_gguf

    base, folder = Path(base), Path(folder)
    peft_model = random_lora(load_hf_from_gguf(base), folder / "peft", rank=rank, modules=modules, std=std, seed=seed)
    start = time.perf_counter()
    gguf = peft_to_gguf(folder / "peft", base, folder / "adapter.gguf")
    export_s = time.perf_counter() - start
    llm = open_llama(base)
    try:
        tokens = [chat_tokens(llm, p) for p in prompts()]
        labels = label_ids(llm)
        llama_base = np.stack([llama_logits(llm, t) for t in tokens])
    finally:
        llm.close()
    torch_base, torch_lora = torch_pair(peft_model, tokens)
    return Reference(base, folder / "peft", gguf, tokens, labels, torch_base, torch_lora, llama_base, export_s)


def llama_logits_with(base: Path, lora: Path | None, tokens: Sequence[Sequence[int]]) -> np.ndarray:
    """llama.cpp logits per prompt with ``lora`` applied at load time."""
    llm = open_llama(base, lora)
    try:
        return np.stack([llama_logits(llm, t) for t in tokens])
    finally:
        llm.close()


def check(ref: Reference, lora: Path | None = None) -> Comparison:
    """Compare llama.cpp with ``lora`` (default: the reference's export) against torch+PEFT."""
    llama_lora = llama_logits_with(ref.base, lora or ref.gguf, ref.tokens)
    return compare(ref.torch_base, ref.torch_lora, ref.llama_base, llama_lora, ref.labels)
