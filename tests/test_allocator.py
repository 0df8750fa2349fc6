import pytest

from r2local.routing.thresholds import (
    ThresholdPolicy,
    calibrate_thresholds,
    default_thresholds,
)


def test_policy_maps_scores_to_tiers():
    p = ThresholdPolicy([0.3, 0.7])
    assert [p.tier_index(s) for s in (0.0, 0.3, 0.31, 0.7, 0.71, 1.0)] == [0, 0, 1, 1, 2, 2]


def test_default_thresholds_split_evenly():
    assert default_thresholds(3) == pytest.approx([1 / 3, 2 / 3])
    assert default_thresholds(1) == []


@pytest.mark.parametrize("share", [0.0, 0.1, 0.2, 0.5, 0.9])
def test_calibration_hits_the_target_share(share: float):
    scores = [i / 1000 for i in range(1000)]
    th = calibrate_thresholds(scores, 3, share)
    policy = ThresholdPolicy(th)
    top = sum(1 for s in scores if policy.tier_index(s) == 2) / len(scores)
    assert top == pytest.approx(share, abs=0.002)
    middle = sum(1 for s in scores if policy.tier_index(s) == 1) / len(scores)
    assert middle == pytest.approx((1 - share) / 2, abs=0.002)


def test_calibration_with_ties_never_overshoots():
    scores = [0.5] * 80 + [0.9] * 20
    th = calibrate_thresholds(scores, 2, 0.1)
    top = sum(1 for s in scores if ThresholdPolicy(th).tier_index(s) == 1) / len(scores)
    assert top <= 0.1


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError):
        calibrate_thresholds([], 3, 0.2)
    with pytest.raises(ValueError):
        calibrate_thresholds([0.1], 3, 1.5)
