"""A route per question, and the policy that picks it.

The router rates the whole question once (one forward pass); the policy maps
that difficulty to a band, and the band says how to answer: the whole
question on one local tier (escalated by agreement), the router's plan on
local tiers (``decompose``), or the whole question on the cloud.

A calibrated policy comes from measured outcomes: per band, each tier's
accuracy on whole questions. A tier gets a band only if it is better there
than every cheaper tier (so on arithmetic the 135M model gets nothing), and
a band goes straight to the cloud only when no local tier is right often
enough to be worth trying. With no measurements the policy is one band:
the strongest local tier, with agreement deciding what climbs.

Answer kinds differ more than difficulty bands do (the same 0.5B is right on
nine in ten one-step sums and on a third of capital cities), so a kind with
enough measured questions gets bands of its own, fitted on its questions
alone; the other kinds use the bands fitted on everything.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from r2local.engine.kinds import route_kind
from r2local.vocab import Route

if TYPE_CHECKING:
    from r2local.pool import Tier

MARGIN = 0.05  # a pricier tier must beat a cheaper one by more than this to get a band
LOCAL_FLOOR = 0.2  # below this local accuracy, trying locally first only costs time
# A local tier wrong more often than right, with a cloud this much more accurate: the vote cannot close
# the gap (measured on multiple choice: local 34 %, cloud 88 %, agreement AUROC 0.5), so the band goes
# straight up (where no agreement was measured; with votes the band's threshold decides, see _band).
CLOUD_GAP = 0.4
LOCAL_WEAK = 0.5  # "wrong more often than right"
NEVER_DONE = 1.01  # an agreement threshold no vote reaches: the answer always climbs (or stays unsure offline)
KIND_MIN = 16  # measured questions an answer kind needs before it gets bands of its own
PLAN = "plan"  # the tier name outcomes of the decompose route carry (the router's plan on local tiers)


@dataclass(frozen=True)
class Band:
    upto: float  # the band holds difficulties <= upto (the last band: 1.0)
    route: Route
    tier: str  # the tier that answers first (whole-local, decompose) or the cloud tier
    accuracy: dict[str, float] = field(default_factory=dict)  # measured, per tier
    n: int = 0  # questions measured in this band
    agree_below: float | None = None  # this band's agreement threshold (None: the policy's)


@dataclass(frozen=True)
class RoutePolicy:
    bands: list[Band]
    agree_below: float | None = None  # calibrated agreement threshold; None: [executor] agree_below
    source: str = "default"
    kinds: dict[str, list[Band]] = field(default_factory=dict)  # answer kind -> its own bands, where measured

    def band(self, difficulty: float | None, kind: str | None = None) -> Band:
        """The band of a question rated ``difficulty`` that asks for an answer of ``kind``."""
        bands = self.kinds.get(kind, self.bands) if kind else self.bands
        if difficulty is None:  # too long to rate: the last band
            return bands[-1]
        edges = [b.upto for b in bands[:-1]]
        return bands[bisect.bisect_left(edges, difficulty)]

    def for_question(self, question: str, difficulty: float | None,
                     before: str | None = None) -> tuple[Band, str | None]:
        """The band for ``question`` (``before``: the previous turn's answer kind, for a follow-up),
        and its answer kind when that kind has bands of its own."""
        kind = route_kind(question, before)
        return self.band(difficulty, kind), (kind if kind in self.kinds else None)

    def tier_names(self) -> set[str]:
        """Every tier some band sends questions to (a saved policy fits a pool only if it has them all)."""
        return {b.tier for bands in [self.bands, *self.kinds.values()] for b in bands}

    def threshold(self, band: Band) -> float | None:
        """The agreement threshold for a question in ``band``: its own, else the policy's."""
        return band.agree_below if band.agree_below is not None else self.agree_below

    def to_json(self) -> dict[str, Any]:
        return {"bands": [asdict(b) for b in self.bands], "agree_below": self.agree_below, "source": self.source,
                "kinds": {k: [asdict(b) for b in bands] for k, bands in self.kinds.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RoutePolicy":
        def read(bands: list[dict[str, Any]]) -> list[Band]:
            return [Band(b["upto"], Route(b["route"]), b["tier"], b.get("accuracy", {}), b.get("n", 0),
                         b.get("agree_below")) for b in bands]

        kinds = {k: read(v) for k, v in (data.get("kinds") or {}).items()}  # a policy saved before kinds has none
        return cls(read(data["bands"]), data.get("agree_below"), data.get("source", "calibration"), kinds)

    def dumps(self) -> str:
        return json.dumps(self.to_json())


def first_local(tiers: list["Tier"]) -> "Tier":
    """Without measurements, the tier a question starts on: the strongest local tier
    (a program-writing one if there is one, since those are right far more often)."""
    local = [t for t in tiers if t.is_local]
    writers = [t for t in local if t.writes_programs]
    return (writers or local)[-1]


def default_policy(tiers: list["Tier"]) -> RoutePolicy:
    return RoutePolicy([Band(1.0, Route.WHOLE_LOCAL, first_local(tiers).name)], None, "default")


@dataclass(frozen=True)
class GradedAnswer:
    """One measured whole-question answer: its difficulty, the tier, right or not."""

    difficulty: float
    tier: str
    correct: bool
    kind: str | None = None  # the answer kind the question asks for


def fit_policy(outcomes: list[GradedAnswer], tiers: list["Tier"], *, bands: int = 4, min_per_band: int = 8,
               agree_below: float | None = None, source: str = "calibration", votes: list["Vote"] | None = None,
               cloud_share: float | None = None) -> RoutePolicy:
    """Bands by difficulty quantile, each given the cheapest tier that no pricier one beats, and,
    with ``votes``, its own agreement threshold; the same again for each answer kind with at least
    ``KIND_MIN`` measured questions (see ``_fit_bands`` for the other arguments).

    Args:
        agree_below: the policy-wide agreement threshold (for bands without their own).
        source: what the policy was fitted on, as shown when it routes.
    """
    if not outcomes:
        return default_policy(tiers)
    general = _fit_bands(outcomes, tiers, bands, min_per_band, votes, cloud_share)
    kinds: dict[str, list[Band]] = {}
    for kind in sorted({o.kind for o in outcomes if o.kind}):
        mine = [o for o in outcomes if o.kind == kind]
        if _questions(mine) >= KIND_MIN:
            own = [v for v in votes or [] if v.kind == kind]
            kinds[kind] = _fit_bands(mine, tiers, bands, min_per_band, own or None, cloud_share)
    return RoutePolicy(general, agree_below, source, kinds)


def _questions(outcomes: list[GradedAnswer]) -> int:
    return len(outcomes) // max(1, len({o.tier for o in outcomes}))


def _fit_bands(outcomes: list[GradedAnswer], tiers: list["Tier"], bands: int, min_per_band: int,
               votes: list["Vote"] | None, cloud_share: float | None) -> list[Band]:
    """Bands by difficulty quantile for ``outcomes``.

    Args:
        outcomes: graded whole-question answers, several tiers per question.
        tiers: the pool's tiers, cheapest first.
        bands: how many difficulty bands at most (fewer when data is thin).
        min_per_band: questions a band needs, so that its accuracies mean something.
        votes: local answers with their agreement and both grades, and the question's difficulty:
            each whole-local band then gets the threshold that spends escalations where they
            help most (see ``band_thresholds``).
        cloud_share: at most this share of the votes escalated, over all bands (None: best accuracy).
    """
    if not outcomes:
        return default_policy(tiers).bands
    scores = sorted(o.difficulty for o in outcomes)  # every question once per tier: quantiles are unchanged
    questions = _questions(outcomes)
    count = max(1, min(bands, questions // max(1, min_per_band)))
    edges = sorted({scores[min(len(scores) - 1, (len(scores) * k) // count - 1)] for k in range(1, count)})
    out: list[Band] = []
    lo = -1.0
    for upto in [*edges, 1.0]:
        inside = [o for o in outcomes if lo < o.difficulty <= upto]
        lo = upto
        if inside:
            out.append(_band(upto, inside, tiers, voted=bool(votes)))
    if votes:
        out = band_thresholds(out, votes, cloud_share)
    return _merge(out) or default_policy(tiers).bands


def _band(upto: float, inside: list[GradedAnswer], tiers: list["Tier"], voted: bool = False) -> Band:
    """The band's tier by accuracy alone. ``voted``: agreement is measured, so whether a weak local tier's
    answers are worth keeping is left to the band's threshold (band_thresholds), not to CLOUD_GAP: measured on
    multiple choice answered open (engine/options.py), local right on 45 %, the vote kept 24 right answers of 31."""
    acc: dict[str, float] = {}
    for name in [t.name for t in tiers] + [PLAN]:
        mine = [o.correct for o in inside if o.tier == name]
        if mine:
            acc[name] = sum(mine) / len(mine)
    n = max((sum(1 for o in inside if o.tier == name) for name in acc), default=0)
    local = [t for t in tiers if t.is_local and t.name in acc]
    if voted:  # the votes measured the first local tier's agreement: a band with a threshold is that tier's
        local = [t for t in local if t.name == first_local(tiers).name] or local
    cloud = [t for t in tiers if not t.is_local and t.name in acc]
    pick = None
    for t in local:  # cheapest first: a pricier tier must be clearly better
        if pick is None or acc[t.name] > acc[pick.name] + MARGIN:
            pick = t
    route, tier, best = Route.WHOLE_LOCAL, pick, acc[pick.name] if pick is not None else 0.0
    if PLAN in acc and acc[PLAN] > best + MARGIN:  # decomposition pays here, measured (and stays local)
        route, tier, best = Route.DECOMPOSE, first_local(tiers), acc[PLAN]
    top = acc[cloud[-1].name] if cloud else 0.0
    hopeless = best < LOCAL_FLOOR and top > best + MARGIN
    outclassed = not voted and best < LOCAL_WEAK and top >= best + CLOUD_GAP
    if tier is None or (cloud and (hopeless or outclassed)):
        target = cloud[-1] if cloud else first_local(tiers)
        return Band(upto, Route.WHOLE_CLOUD if cloud else Route.WHOLE_LOCAL, target.name, acc, n)
    return Band(upto, route, tier.name, acc, n)


def _merge(bands: list[Band]) -> list[Band]:
    """Neighbouring bands with the same route and tier become one."""
    out: list[Band] = []
    for b in bands:
        if out and (out[-1].route, out[-1].tier, out[-1].agree_below) == (b.route, b.tier, b.agree_below):
            prev = out[-1]
            acc = {k: (prev.accuracy.get(k, v) * prev.n + v * b.n) / max(1, prev.n + b.n) for k, v in b.accuracy.items()}
            out[-1] = Band(b.upto, b.route, b.tier, acc, prev.n + b.n, b.agree_below)
        else:
            out.append(b)
    if out:
        last = out[-1]
        out[-1] = Band(1.0, last.route, last.tier, last.accuracy, last.n, last.agree_below)
    return out


@dataclass(frozen=True)
class Vote:
    """One question answered locally and on the cloud: the local answer's agreement and both grades."""

    agreement: float
    local_correct: bool
    cloud_correct: bool
    difficulty: float | None = None  # the router's rating of the question
    kind: str | None = None  # the answer kind the question asks for
    held: bool = False  # a check other than the vote held the local answer back: it climbs at any threshold

    def up(self, tau: float) -> bool:
        """Whether the local answer escalates at agreement threshold ``tau``."""
        return self.held or self.agreement < tau


def _choices(votes: list[Vote]) -> list[tuple[float, int, int]]:
    """(threshold, right answers, escalations) for each threshold that changes something in ``votes``."""
    out = []
    for tau in sorted({v.agreement for v in votes} | {0.0}) + [NEVER_DONE]:
        up = [v.up(tau) for v in votes]
        right = sum(v.cloud_correct if u else v.local_correct for v, u in zip(votes, up))
        out.append((tau, right, sum(up)))
    return out


def band_thresholds(bands: list[Band], votes: list[Vote], cloud_share: float | None) -> list[Band]:
    """Each whole-local band's agreement threshold: escalations go where they buy the most right
    answers. A price per escalation is raised until the total fits ``cloud_share`` (None: the
    most right answers); each band then takes the threshold worth most at that price."""
    edges = [b.upto for b in bands[:-1]]
    groups: list[list[Vote]] = [[] for _ in bands]
    for v in votes:
        if v.difficulty is not None:
            groups[bisect.bisect_left(edges, v.difficulty)].append(v)
    def fixed(b: Band, g: list[Vote]) -> list[tuple[float, int, int]]:  # a band whose route has no vote
        cloud = b.route == Route.WHOLE_CLOUD
        return [(0.0, sum(v.cloud_correct for v in g) if cloud else 0, len(g) if cloud else 0)]

    options = [_choices(g) if g and b.route == Route.WHOLE_LOCAL else fixed(b, g) for b, g in zip(bands, groups)]
    budget = None if cloud_share is None else cloud_share * sum(len(g) for g in groups)
    best: tuple[int, int, list[float | None]] | None = None
    for price in [i / 200 for i in range(201)]:
        picks = [max(o, key=lambda c: (c[1] - price * c[2], -c[2])) if o else None for o in options]
        right = sum(p[1] for p in picks if p)
        ups = sum(p[2] for p in picks if p)
        if budget is not None and ups > budget + 1e-9:
            continue
        if best is None or (right, -ups) > (best[0], -best[1]):
            best = (right, ups, [p[0] if p else None for p in picks])
    if best is None:  # nothing fits: escalate nothing
        best = (0, 0, [0.0 for _ in options])
    return [Band(b.upto, b.route, b.tier, b.accuracy, b.n, tau if b.route == Route.WHOLE_LOCAL else None)
            for b, tau in zip(bands, best[2])]


def escalation_curve(votes: list[Vote]) -> list[dict[str, float]]:
    """Accuracy and cloud share for every agreement threshold that makes a difference
    (escalate when agreement < threshold), from the lowest share to the highest."""
    n = len(votes)
    return [{"agree_below": tau, "accuracy": right / n, "cloud_share": ups / n} for tau, right, ups in _choices(votes)]


def fit_agreement(votes: list[Vote], cloud_share: float | None = None) -> float | None:
    """The agreement threshold with the best accuracy (at most ``cloud_share`` of questions
    escalated, when given); ties go to the lower share. None without votes."""
    if not votes:
        return None
    curve = [c for c in escalation_curve(votes) if cloud_share is None or c["cloud_share"] <= cloud_share + 1e-9]
    best = max(curve, key=lambda c: (round(c["accuracy"], 9), -c["cloud_share"]))
    return best["agree_below"]
