"""Router refinement on a real model (SmolLM2-135M): head, allocator SFT/GRPO, decomposer SFT.

Every run uses one torch thread (the box is shared with llama.cpp tests) and
LoRA on the top 4 layers unless a test says otherwise, so a step is well under
a second.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest
import torch  # the test extra installs torch, peft and scikit-learn: these tests never skip

from r2local.errors import R2Error  # noqa: E402
from r2local.routing.thresholds import LABELS, score_messages  # noqa: E402
from r2local.routing.plan import plan_messages  # noqa: E402
from r2local.train import allocator, decomposer  # noqa: E402
from r2local.train.common import (  # noqa: E402
    META_FILE,
    LoraArgs,
    Router,
    attach_lora,
    batches,
    load_router,
    save_atomically,
)
from r2local.train.data import AllocExample, TextExample, TrainError, best_label  # noqa: E402
from r2local.train.head import HeadBaseline, hidden_features  # noqa: E402
from r2local.train.policy import LabelPolicy, label_token_ids  # noqa: E402

QUESTIONS = [
    "What is 17 + 25?",
    "Name the capital of France.",
    "Sort the list 3, 1, 2.",
    "How many legs has a spider?",
    "Convert 3 km to metres.",
    "Spell 'cat' backwards.",
]


def table(rewards: dict[str, float], questions=QUESTIONS) -> list[AllocExample]:
    return [AllocExample(score_messages(q, "Answer the question directly."), dict(rewards)) for q in questions]


def args(**kw) -> allocator.AllocatorArgs:
    base = {"sft_steps": 0, "grpo_steps": 0, "batch_size": 6, "lr": 1e-3, "threads": 1, "lora": LoraArgs(layers=4)}
    return allocator.AllocatorArgs(**{**base, **kw})


@pytest.fixture(scope="module")
def base(smol_path: Path) -> Router:
    torch.set_num_threads(1)
    return load_router(smol_path)


@pytest.fixture
def router(base: Router) -> Router:
    """A private copy of the model: a failed test cannot leave LoRA on the shared one."""
    return Router(copy.deepcopy(base.model), base.tokenizer, base.source)


# -- plain parts -----------------------------------------------------------------
def test_best_label_ties_go_to_the_cheapest():
    assert best_label({"easy": 0.5, "medium": 0.9, "hard": 0.9}) == "medium"
    assert best_label({"easy": 1.0, "medium": 1.0, "hard": 1.0}) == "easy"


def test_bad_examples_name_the_row_and_the_fix(router: Router):
    bad = [AllocExample(score_messages("q", "s"), {"easy": 1.0, "medium": 0.0})]
    with pytest.raises(TrainError) as err:
        allocator.train(router, bad, args(grpo_steps=1), None)
    assert "example 0" in err.value.message and "hard" in err.value.message and err.value.fix


def test_labels_must_have_distinct_first_tokens(base: Router):
    assert len(set(label_token_ids(base.tokenizer, LABELS))) == 3
    with pytest.raises(TrainError) as err:
        label_token_ids(base.tokenizer, ("hard", "hardest"))
    assert "first token" in err.value.message and isinstance(err.value, R2Error) and err.value.fix


def test_batches_visit_every_example_each_pass():
    stream = batches(10, 4, seed=3)
    seen = [i for _ in range(5) for i in next(stream)]  # 20 draws = two passes
    assert sorted(seen) == sorted(list(range(10)) * 2)


def test_save_is_atomic(tmp_path: Path):
    out = tmp_path / "adapter"

    def crash(folder: Path) -> None:
        (folder / "adapter_model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # a kill in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        save_atomically(out, crash)
    assert [p for p in tmp_path.iterdir() if p.name not in ("home", "xdg")] == []
    save_atomically(out, lambda f: (f / "a").write_text("1"))
    with pytest.raises(TrainError):
        save_atomically(out, lambda f: (f / "a").write_text("2"))
    save_atomically(out, lambda f: (f / "a").write_text("2"), overwrite=True)
    assert (out / "a").read_text() == "2" and [p.name for p in tmp_path.iterdir() if p.name != "home"] == ["adapter"]


def test_clipped_objective_and_exact_kl():
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).requires_grad_()
    ref = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    old = torch.log(torch.tensor([[0.3, 0.5]]))  # old probs of the two sampled actions
    actions, adv, w = torch.tensor([[0, 0]]), torch.tensor([[1.0, -1.0]]), torch.ones(1)
    a = args(clip_eps=0.2, beta=0.0)
    loss, m = allocator.grpo_loss(logp, old[:, :1].expand(1, 2), actions, adv, ref, w, a)
    # ratio 0.5/0.3 = 1.67: A>0 is clipped to 1.2 (no gradient), A<0 keeps the ratio.
    assert loss.item() == pytest.approx(-(1.2 * 1 + (0.5 / 0.3) * -1) / 2, rel=1e-5) and m["clip_frac"] == 1.0
    loss.backward()
    assert logp.grad[0, 0].item() == pytest.approx((0.5 / 0.3) / 2, rel=1e-5)  # d/dlogp of -(-ratio)/2
    _, m = allocator.grpo_loss(logp.detach(), old, actions, adv, ref, w, a)
    kl = sum(p * torch.log(torch.tensor(p / q)) for p, q in [(0.5, 0.2), (0.3, 0.3), (0.2, 0.5)])
    assert m["kl"] == pytest.approx(float(kl), rel=1e-5)


# -- the policy sees what the router sees --------------------------------------------
def test_trainer_scores_the_routers_prompt(smol_path: Path, router: Router):
    from r2local.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(smol_path, threads=1, n_ctx=512)
    try:
        probs, n_tokens = backend.score_labels(table({})[0].messages, list(LABELS))
    finally:
        backend.close()
    policy = allocator.make_policy(router, args())
    messages = table({})[0].messages
    assert len(policy.tokens(messages)) == n_tokens
    ours = policy.reference_logprobs([messages])[0].exp().tolist()
    # Same prompt tokens; fp32 here vs llama.cpp's quantised matmuls there.
    print("label probs, trainer (fp32) vs llama.cpp:", [round(p, 3) for p in ours], probs)
    assert ours == pytest.approx([probs[label] for label in LABELS], abs=0.05)


def test_reference_is_the_router_without_the_adapter(router: Router):
    """The cached reference (shared prefix run once) equals the plain forward, adapter off."""
    policy = allocator.make_policy(router, args())
    messages = [ex.messages for ex in table({})]
    policy.prepare(messages)
    assert policy._prefix is not None and len(policy._prefix[0]) > 30
    _randomise_lora(policy.model)  # the reference must not see the adapter
    ref = policy.reference_logprobs(messages)
    ids = torch.tensor(label_token_ids(router.tokenizer, LABELS))
    with torch.no_grad(), policy.model.disable_adapter():
        for row, m in zip(ref, messages):
            logits = policy.model(input_ids=torch.tensor([policy.tokens(m)])).logits[0, -1]
            assert torch.allclose(row, logits[ids].log_softmax(-1), atol=1e-4)


def _randomise_lora(model) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def test_cached_layers_and_shared_prefix_match_the_models_own_forward(router: Router):
    messages = [ex.messages for ex in table({})[:4]]
    peft_model = attach_lora(router.model, LoraArgs(layers=4))
    _randomise_lora(peft_model)
    split = router.model.config.num_hidden_layers - 4
    fast = LabelPolicy(peft_model, router.tokenizer, LABELS, split=split, share_prefix=True)
    plain = LabelPolicy(peft_model, router.tokenizer, LABELS, split=split, share_prefix=False)
    assert fast._shared_prefix([fast.tokens(m) for m in messages]) > 30  # the system prompt
    got = fast.label_logprobs(messages)
    ids = torch.tensor(label_token_ids(router.tokenizer, LABELS))
    for row, m in zip(got, messages):
        logits = peft_model(input_ids=torch.tensor([fast.tokens(m)])).logits[0, -1]
        assert torch.allclose(row, logits[ids].log_softmax(-1), atol=1e-4)
    got.sum().backward()
    grads = {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.grad is not None}
    peft_model.zero_grad()
    plain.label_logprobs(messages).sum().backward()
    assert grads and all(
        torch.allclose(grads[n], p.grad, rtol=1e-3, atol=1e-6)
        for n, p in peft_model.named_parameters()
        if p.grad is not None
    )


# -- training ----------------------------------------------------------------------
def test_sft_moves_the_greedy_label_to_the_target(router: Router):
    examples = table({"easy": 0.0, "medium": 1.0, "hard": 0.0})  # medium: the least likely label before
    run = allocator.train(router, examples, args(sft_steps=8), None)
    acc = run.curves["eval_accuracy"]
    print("SFT accuracy", acc, "loss", run.curves["sft_loss"][0][1], "->", run.last("sft_loss"))
    assert acc[0] == (0, 0.0) and acc[-1] == (8, 1.0)
    losses = [v for _, v in run.curves["sft_loss"]]
    assert losses[-1] < 0.5 * losses[0]
    run.release()


def test_grpo_raises_the_best_labels_probability_and_reward(router: Router):
    examples = table({"easy": 0.0, "medium": 0.2, "hard": 1.0})
    run = allocator.train(router, examples, args(grpo_steps=12), None)
    p_best, greedy = run.curves["eval_p_best"], run.curves["eval_greedy_reward"]
    print("GRPO p_best", p_best, "greedy reward", greedy)
    assert p_best[-1][1] > p_best[0][1] + 0.3 and p_best[-1][1] > 0.9
    assert greedy[-1][1] > greedy[0][1] and greedy[-1][1] == pytest.approx(1.0)
    assert run.curves["eval_sampled_reward"][-1][1] > run.curves["eval_sampled_reward"][0][1]
    run.release()


def test_kl_term_keeps_the_policy_near_the_reference(router: Router):
    examples = table({"easy": 0.0, "medium": 0.2, "hard": 1.0})
    free = allocator.train(router, examples, args(grpo_steps=12, beta=0.0), None)
    router.model = free.release()  # the bare model again, for a fresh adapter
    held = allocator.train(router, examples, args(grpo_steps=12, beta=2.0), None)
    kl_free, kl_held = free.last("eval_kl_ref"), held.last("eval_kl_ref")
    print(
        "KL to reference: beta=0",
        kl_free,
        "beta=2",
        kl_held,
        "sampled reward beta=2",
        held.curves["eval_sampled_reward"][0][1],
        "->",
        held.last("eval_sampled_reward"),
    )
    assert kl_held < 0.5 * kl_free
    assert held.last("eval_sampled_reward") > held.curves["eval_sampled_reward"][0][1]  # still learns
    held.release()


def test_several_updates_per_batch_make_the_clip_bite(router: Router):
    run = allocator.train(
        router,
        table({"easy": 0.0, "medium": 0.2, "hard": 1.0}),
        args(grpo_steps=3, updates_per_batch=4, clip_eps=0.05),
        None,
    )
    print("clip fraction per step", run.curves["grpo_clip_frac"])
    assert max(v for _, v in run.curves["grpo_clip_frac"]) > 0  # later updates move past 1 +- eps
    run.release()


def test_cancel_stops_within_a_step_and_writes_nothing(router: Router, tmp_path: Path):
    cancel, seen = threading.Event(), []

    def progress(step: int, metrics: dict) -> None:
        if "grpo_loss" in metrics:
            seen.append(step)
            if step == 2:
                cancel.set()

    out = tmp_path / "adapters" / "v1"
    run = allocator.train(
        router,
        table({"easy": 0.0, "medium": 0.2, "hard": 1.0}),
        args(grpo_steps=50),
        out,
        progress=progress,
        cancel=cancel,
    )
    assert run.cancelled and run.steps == 2 and seen == [1, 2] and run.out_dir is None
    parent = tmp_path / "adapters"
    assert not out.exists() and (not parent.exists() or list(parent.iterdir()) == [])  # no temp dir either
    run.release()


def test_saved_adapter_reloads_with_peft_and_gives_the_same_logits(router: Router, tmp_path: Path):
    from peft import PeftModel
    from safetensors import safe_open

    examples = table({"easy": 0.0, "medium": 0.2, "hard": 1.0})
    run = allocator.train(router, examples, args(sft_steps=2, grpo_steps=2), tmp_path / "adapter")
    prompts = [ex.messages for ex in examples]
    with torch.no_grad():
        trained = run.policy.full_logits(prompts)
    config = json.loads((run.out_dir / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert config["layers_to_transform"] == list(range(26, 30))
    with safe_open(str(run.out_dir / "adapter_model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert keys and all("lora_A" in k or "lora_B" in k for k in keys)  # no head, no embeddings
    meta = json.loads((run.out_dir / META_FILE).read_text())
    assert meta["kind"] == "allocator" and meta["args"]["lora"]["layers"] == 4 and meta["curves"]["grpo_loss"]

    reloaded = PeftModel.from_pretrained(run.release(), str(run.out_dir))
    tokens = LabelPolicy(reloaded, router.tokenizer, LABELS).tokens
    with torch.no_grad():
        again = torch.stack([reloaded(input_ids=torch.tensor([tokens(m)])).logits[0, -1] for m in prompts])
        with reloaded.disable_adapter():
            untrained = torch.stack([reloaded(input_ids=torch.tensor([tokens(m)])).logits[0, -1] for m in prompts])
    assert torch.allclose(trained, again, atol=1e-4)
    assert (trained - untrained).abs().max() > 0.1  # the adapter did change the router


# -- decomposer ------------------------------------------------------------------------
PLANS = [
    ("A box holds 12 eggs. How many eggs are in 7 boxes?", [{"id": 1, "text": "Compute 7 x 12.", "depends_on": []}]),
    (
        "Tom has 5 apples and buys 3 bags of 4. How many apples now?",
        [
            {"id": 1, "text": "Compute 3 x 4.", "depends_on": []},
            {"id": 2, "text": "Add 5 to the result of step 1.", "depends_on": [1]},
        ],
    ),
    ("What is 15% of 80?", [{"id": 1, "text": "Compute 0.15 x 80.", "depends_on": []}]),
]


def test_decomposer_sft_lowers_the_target_loss(router: Router, tmp_path: Path):
    examples = [TextExample(plan_messages(q, 4), json.dumps({"subtasks": plan})) for q, plan in PLANS]
    ids, n_prompt = decomposer.encode(router.tokenizer, examples[0])
    reply = router.tokenizer.decode(ids[n_prompt:])
    assert reply.startswith(examples[0].target) and reply.rstrip().endswith("<|im_end|>")
    a = decomposer.DecomposerArgs(steps=6, batch_size=3, lr=1e-3, threads=1, lora=LoraArgs(layers=8))
    run = decomposer.train(router, examples, a, tmp_path / "plan-adapter")
    before, after = run.curves["eval_target_loss"][0][1], run.last("eval_target_loss")
    print("decomposer target loss", before, "->", after)
    assert after < 0.6 * before
    assert (run.out_dir / "adapter_model.safetensors").is_file() and (run.out_dir / META_FILE).is_file()
    run.release()


# -- classifier head -----------------------------------------------------------------
def _feature_examples(n: int, seed: int) -> list[AllocExample]:
    import random

    rng, out = random.Random(seed), []
    for _ in range(n):
        k = rng.randrange(3)  # the true best tier shows in the logged features, with noise
        feats = {
            "p_hard": 0.2 + 0.3 * k + rng.gauss(0, 0.08),
            "len": 20 + 40 * k + rng.gauss(0, 15),
            "agree": rng.random(),
        }
        rewards = {label: (1.0 if i == k else 0.3) for i, label in enumerate(LABELS)}
        out.append(AllocExample([{"role": "user", "content": "x"}], rewards, feats))
    return out


def test_head_beats_chance_and_round_trips(tmp_path: Path):
    train_set, test_set = _feature_examples(120, 0), _feature_examples(60, 1)
    head = HeadBaseline.fit(train_set)
    score = head.evaluate(test_set)
    print("head on logged features, held-out", score)
    assert score["accuracy"] > 0.8  # chance is 1/3
    loaded = HeadBaseline.load(head.save(tmp_path / "head.json"))
    assert loaded.predict(test_set) == head.predict(test_set)
    assert head.predict_proba(test_set).sum(1) == pytest.approx([1.0] * 60)
    two = HeadBaseline.fit([ex for ex in train_set if best_label(ex.rewards) != "medium"])
    assert (
        set(two.predict(test_set)) <= {"easy", "hard"}
        and two.evaluate([ex for ex in test_set if best_label(ex.rewards) != "medium"])["accuracy"] > 0.9
    )


def test_head_on_router_hidden_states(base: Router):
    sums = [f"What is {a} + {b}?" for a, b in [(2, 3), (7, 8), (10, 5), (4, 4), (9, 1), (6, 2), (3, 3), (1, 8)]]
    proofs = [
        f"Prove that {x} is irrational."
        for x in ["sqrt 2", "sqrt 3", "pi", "e", "sqrt 5", "log 2", "sqrt 7", "the golden ratio"]
    ]
    easy, hard = {"easy": 1.0, "medium": 0.5, "hard": 0.2}, {"easy": 0.0, "medium": 0.3, "hard": 0.9}
    examples = [AllocExample(score_messages(q, q), easy) for q in sums] + [
        AllocExample(score_messages(q, q), hard) for q in proofs
    ]
    hidden = hidden_features(base, [ex.messages for ex in examples])
    assert hidden.shape == (16, base.model.config.hidden_size)
    train_idx = [i for i in range(16) if i % 4]
    test_idx = [i for i in range(16) if not i % 4]
    head = HeadBaseline.fit([examples[i] for i in train_idx], hidden=hidden[train_idx])
    assert head.evaluate([examples[i] for i in test_idx], hidden[test_idx])["accuracy"] == 1.0
    with pytest.raises(TrainError):
        head.predict(examples)  # fitted with hidden states, asked without
