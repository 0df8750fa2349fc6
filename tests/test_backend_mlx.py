"""MLX backend on a tiny random llama built at test time (mlx[cpu] on Linux)."""

import json
from pathlib import Path

import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is not installed (pip install 'r2local[mlx]')")
pytest.importorskip("mlx_lm")

from r2local.backends import complete  # noqa: E402
from r2local.backends.mlx import MlxBackend  # noqa: E402
from r2local.errors import ContextOverflow, ModelError  # noqa: E402

WORDS = "easy medium hard yes no the a sky is blue red green one two three answer question step".split()
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def build_tiny_llama(folder: Path) -> Path:
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS + list("abcdefghijklmnopqrstuvwxyz0123456789.,?!:"))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    config = {
        "model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64,
        "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5, "vocab_size": len(vocab),
        "tie_word_embeddings": True, "max_position_embeddings": 256, "eos_token_id": vocab["</s>"],
    }
    (folder / "config.json").write_text(json.dumps(config))
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    backend = MlxBackend(folder, model="tiny", n_ctx=128)
    yield backend
    backend.close()


MSG = [{"role": "user", "content": "is the sky blue ?"}]


def test_stream_and_fold(tiny: MlxBackend):
    chunks = list(tiny.stream(MSG, max_tokens=6))
    assert chunks[-1].usage.output_tokens == 6 and chunks[-1].finish_reason == "length"
    assert chunks[-1].usage.input_tokens > 5
    result = complete(tiny, MSG, max_tokens=6)
    assert result.usage.output_tokens == 6 and 0 < result.confidence <= 1


def test_label_scores_from_one_pass(tiny: MlxBackend):
    probs, n = tiny.score_labels(MSG, ["easy", "medium", "hard"])
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5) and n > 5
    again, _ = tiny.score_labels(MSG, ["easy", "medium", "hard"])
    assert again == pytest.approx(probs)


def test_errors(tiny: MlxBackend, tmp_path: Path):
    with pytest.raises(ContextOverflow):
        list(tiny.stream([{"role": "user", "content": "a " * 300}], max_tokens=2))
    with pytest.raises(ModelError):
        complete(MlxBackend(tmp_path / "nothing"), MSG, max_tokens=2)
