"""Classifier-head baseline: logistic regression from logged features to the best label.

The yardstick the LoRA trainers must beat: it reads the cheap features the
engine already logs (label probabilities, agreement, lengths, ...) and,
optionally, the router's last hidden state at the end of the allocator prompt.
It trains in seconds and is stored as plain JSON (no pickle to trust on load).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r2local.routing.thresholds import LABELS
from r2local.train.data import AllocExample, Messages, TrainError, best_label, check_alloc_examples


def hidden_features(router: Any, prompts: list[Messages], *, threads: int = 1, batch_size: int = 8) -> Any:
    """[N, H] numpy array: the router's final hidden state at each prompt's last token."""
    import numpy as np
    import torch

    from r2local.train.common import torch_threads
    from r2local.train.policy import prompt_tokens

    decoder = router.model.get_decoder()
    out = []
    with torch_threads(threads), torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            rows = [prompt_tokens(router.tokenizer, m) for m in prompts[start : start + batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
            out.append(hidden[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])].float().numpy())
    return np.concatenate(out).astype(np.float64)


@dataclass
class HeadBaseline:
    """A fitted head. ``predict`` needs the same hidden-state columns it was fitted with."""

    labels: tuple[str, ...]
    feature_names: list[str]
    hidden_dim: int
    mean: list[float]
    scale: list[float]
    classes: list[str]
    coef: list[list[float]]
    intercept: list[float]

    @classmethod
    def fit(
        cls, examples: list[AllocExample], *, labels: tuple[str, ...] = LABELS, hidden: Any = None, c: float = 1.0
    ) -> HeadBaseline:
        """Fit on the examples' features (+ ``hidden`` rows, same order); C is the inverse L2 strength."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        check_alloc_examples(examples, labels)
        names = sorted({k for ex in examples for k in ex.features})
        hidden_dim = 0 if hidden is None else int(np.asarray(hidden).shape[1])
        if not names and not hidden_dim:
            raise TrainError("the examples carry no features", fix="log features with each decision or pass hidden=")
        x = _matrix(examples, names, hidden)
        mean, scale = x.mean(0), x.std(0)
        scale[scale == 0] = 1.0  # a constant column carries no signal; keep it finite
        y = [best_label(ex.rewards, labels) for ex in examples]
        if len(set(y)) == 1:  # nothing to separate: always the one label seen
            classes, coef, intercept = [y[0]], [[0.0] * x.shape[1]], [0.0]
        else:
            model = LogisticRegression(C=c, max_iter=2000)
            model.fit((x - mean) / scale, y, sample_weight=[ex.weight for ex in examples])
            # sklearn's order (sorted names); for two classes its one row scores classes_[1]
            classes = [str(k) for k in model.classes_]
            coef, intercept = model.coef_.tolist(), model.intercept_.tolist()
        return cls(tuple(labels), names, hidden_dim, mean.tolist(), scale.tolist(), classes, coef, intercept)

    def predict_proba(self, examples: list[AllocExample], hidden: Any = None) -> Any:
        """[N, len(labels)]: probability of each label being best (0 for labels never seen best)."""
        import numpy as np

        if self.hidden_dim and (hidden is None or np.asarray(hidden).shape[1] != self.hidden_dim):
            raise TrainError(
                f"this head needs {self.hidden_dim} hidden-state columns", fix="pass hidden= from hidden_features"
            )
        x = (_matrix(examples, self.feature_names, hidden if self.hidden_dim else None) - self.mean) / self.scale
        scores = x @ np.array(self.coef).T + np.array(self.intercept)
        if len(self.classes) == 2:  # sklearn's binary model: one score for the second class
            p1 = 1 / (1 + np.exp(-scores[:, 0]))
            part = np.stack([1 - p1, p1], 1)
        else:
            part = np.exp(scores - scores.max(1, keepdims=True))
            part /= part.sum(1, keepdims=True)
        out = np.zeros((len(examples), len(self.labels)))
        for j, label in enumerate(self.classes):
            out[:, self.labels.index(label)] = part[:, j]
        return out

    def predict(self, examples: list[AllocExample], hidden: Any = None) -> list[str]:
        # argmax takes the first maximum: ties go to the cheaper label.
        return [self.labels[int(i)] for i in self.predict_proba(examples, hidden).argmax(1)]

    def evaluate(self, examples: list[AllocExample], hidden: Any = None) -> dict[str, float]:
        """Accuracy against the best label and the mean reward of the predicted label."""
        picks = self.predict(examples, hidden)
        hits = sum(p == best_label(ex.rewards, self.labels) for p, ex in zip(picks, examples))
        reward = sum(ex.rewards[p] for p, ex in zip(picks, examples))
        return {"accuracy": hits / len(examples), "reward": reward / len(examples)}

    def save(self, path: Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"kind": "head", **self.__dict__, "labels": list(self.labels)}))
        tmp.replace(path)  # atomic: a reader sees the old head or the new one
        return path

    @classmethod
    def load(cls, path: Path) -> HeadBaseline:
        data = json.loads(Path(path).read_text())
        if data.pop("kind", None) != "head":
            raise TrainError(f"{path} is not a saved head", fix="point at a file written by HeadBaseline.save")
        data["labels"] = tuple(data["labels"])
        return cls(**data)


def _matrix(examples: list[AllocExample], names: list[str], hidden: Any) -> Any:
    import numpy as np

    x = np.array([[float(ex.features.get(n, 0.0)) for n in names] for ex in examples], dtype=np.float64)
    x = x.reshape(len(examples), len(names))
    if hidden is not None:
        x = np.concatenate([x, np.asarray(hidden, dtype=np.float64)], axis=1)
    return x
