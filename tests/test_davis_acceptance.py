"""Acceptance checks on the real DAVIS 2016 training frames in ../shared (skipped where absent)."""

from pathlib import Path

import pytest

from inpaintseg.evaluate import evaluate

DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-train-240p"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not DAVIS.exists(), reason=f"{DAVIS} not present")]


def test_annotations_as_predictions_score_one():
    result = evaluate(DAVIS / "Annotations", DAVIS)
    assert result["J_mean"] == 1.0 and result["F_mean"] == 1.0
    assert len(result["sequences"]) == 27 and result["frames"] == 1930


def test_empty_predictions_score_zero_except_on_empty_ground_truth(tmp_path):
    result = evaluate(tmp_path, DAVIS)
    assert result["missing"] == 1930
    # J = 1 where both masks are empty (DAVIS convention): only bmx-bumps and surf have empty GT frames
    nonzero = {s for s, v in result["sequences"].items() if v["J"] > 0}
    assert nonzero == {"bmx-bumps", "surf"}
    assert result["J_mean"] < 0.01
