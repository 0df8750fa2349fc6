"""Route policies that ship with r2local, so a newcomer's first question is routed by
measurement, not by one untested band.

Each file in ``shipped/`` holds a policy fitted by ``benchmarks/ship_policy.py`` on the
project's own question sets, and the local models it was measured with, per tier name. It
routes a pool only where every tier it names exists there and each of its local tiers runs
the same model: band accuracies measured on Qwen2.5-Coder-0.5B say nothing about another
model. The cloud tier may differ (it was measured with a 1.5B stand-in; a real cloud model
is stronger, so sending a question up is, if anything, more worth it). A user's own
``r2local calibrate`` replaces it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r2local.routing.policy import RoutePolicy, default_policy

if TYPE_CHECKING:
    from r2local.pool import Tier

SHIPPED_DIR = Path(__file__).parent / "shipped"


def _fits(measured_with: dict[str, str], policy: RoutePolicy, tiers: list["Tier"]) -> bool:
    by_name = {t.name: t for t in tiers}
    if not measured_with or not policy.bands or not policy.tier_names() <= set(by_name):
        return False
    for name, model in measured_with.items():
        tier = by_name.get(name)
        if tier is None:
            return False
        known = (tier.known_as or "").split(" (")[0]  # "name (how it was found)"
        if tier.is_local and (model not in (tier.model, known) or tier.config.adapter):
            return False
    return True


def load(path: Path) -> tuple[RoutePolicy, dict[str, Any]]:
    """The policy in one shipped file, and the file's description of how it was fitted."""
    return _parsed(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int) -> tuple[RoutePolicy, dict[str, Any]]:
    # Every question asks which policy routes it: parse each file once (a new mtime parses it again).
    data = json.loads(path.read_text())
    return RoutePolicy.from_json(data["policy"]), data


def shipped_policy(tiers: list["Tier"], folder: Path = SHIPPED_DIR) -> RoutePolicy | None:
    """The first shipped policy measured with this pool's local models, else None."""
    for path in sorted(folder.glob("*.json")):
        try:
            policy, data = load(path)
        except (OSError, ValueError, KeyError, TypeError):  # a damaged file routes nothing; the default does
            continue
        if _fits(data.get("measured_with", {}), policy, tiers):
            return policy
    return None


def active_policy(calibration: dict[str, Any] | None, tiers: list["Tier"]) -> RoutePolicy:
    """What routes questions for a pool of ``tiers``: the user's last calibration (``calibration``,
    the ledger's latest) where it fits the pool, else the shipped policy for its local models,
    else the unmeasured default."""
    return calibrated(calibration, tiers) or shipped_policy(tiers) or default_policy(tiers)


def calibrated(calibration: dict[str, Any] | None, tiers: list["Tier"]) -> RoutePolicy | None:
    """The route policy a saved calibration holds, if it names only tiers of this pool."""
    if calibration is None or not calibration.get("policy"):
        return None
    policy = RoutePolicy.from_json(calibration["policy"])
    return policy if policy.tier_names() <= {t.name for t in tiers} else None
