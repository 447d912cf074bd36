"""The learned router's artifact and score (engine/router/learned.py), and its training on
synthetic vectors (engine/router/training.py, evaluation.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from breakwater.engine.router.dataset import RoutingData
from breakwater.engine.router.evaluation import Outcomes, choose_threshold, curve
from breakwater.engine.router.learned import (
    FORMAT,
    CostWeighting,
    LearnedRouter,
    RouterArtifactError,
    TopicModel,
    load_router,
    save_router,
)
from breakwater.engine.router.training import TrainingOptions, scores_of, train_router

DIM = 8


def _router(cost: CostWeighting | None = None) -> LearnedRouter:
    rng = np.random.default_rng(1)
    model = TopicModel(("a", "b", "c"), rng.normal(size=(3, DIM)), np.zeros(3), np.array([0.1, 0.5, 0.9]))
    return LearnedRouter("test:embedder", 0.6, model, cost, {"rows": 3})


def _unit(seed: int) -> np.ndarray[Any, Any]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return v / np.linalg.norm(v)


def test_round_trip(tmp_path: Path) -> None:
    """A saved artifact loads back with the same identity, threshold, metadata and scores."""
    router = _router(CostWeighting(1e-5, 3e-5, 70.0))
    save_router(router, tmp_path / "r.json")
    loaded = load_router(tmp_path / "r.json")
    assert loaded.format == FORMAT
    assert (loaded.embedder_identity, loaded.threshold, loaded.metadata) == ("test:embedder", 0.6, {"rows": 3})
    for seed in range(5):
        assert loaded.score(_unit(seed)) == router.score(_unit(seed))
        assert loaded.score(_unit(seed), 500) == router.score(_unit(seed), 500)
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["format"] == "breakwater-router/1" and body["embedder"] == "test:embedder"


def test_missing_file(tmp_path: Path) -> None:
    """A missing artifact is a RouterArtifactError that says so."""
    with pytest.raises(RouterArtifactError, match="no such file"):
        load_router(tmp_path / "absent.json")


def test_not_json(tmp_path: Path) -> None:
    """A file that is not JSON is refused as such."""
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(RouterArtifactError, match="not JSON"):
        load_router(tmp_path / "r.json")


@pytest.mark.parametrize("found", ["breakwater-router/2", None, 1])
def test_other_version(tmp_path: Path, found: object) -> None:
    """Another or no format version is refused, naming both versions."""
    body = _router().to_json() | {"format": found}
    (tmp_path / "r.json").write_text(json.dumps(body))
    with pytest.raises(RouterArtifactError, match=r"an artifact of another version.*breakwater-router/1"):
        load_router(tmp_path / "r.json")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b.pop("threshold"), "threshold"),
        (lambda b: b.update(threshold=1.5), "not in"),
        (lambda b: b["model"].update(rates=[0.1, 0.2]), "one entry per row"),
        (lambda b: b["model"].update(rates=[0.1, 0.2, 2.0]), r"rates must be in \[0, 1\]"),
        (lambda b: b["model"].update(kind="mlp"), "topic-mixture"),
        (lambda b: b.update(embedder=""), "embedder"),
    ],
)
def test_malformed(tmp_path: Path, change: Any, words: str) -> None:
    """A missing or malformed field is a RouterArtifactError naming the field."""
    body = _router().to_json()
    change(body)
    (tmp_path / "r.json").write_text(json.dumps(body))
    with pytest.raises(RouterArtifactError, match=f"malformed.*{words}"):
        load_router(tmp_path / "r.json")


def test_score_range_and_determinism() -> None:
    """Scores are probabilities, the same every time, and cost weighting leans long prompts cheap."""
    router = _router(CostWeighting(1e-5, 3e-5, 70.0))
    for seed in range(50):
        v = _unit(seed)
        score = router.score(v)
        assert 0.0 <= score <= 1.0
        assert score == router.score(v)
        assert abs(router.score(v, 70) - score) < 1e-12  # the reference length: the probability itself
        assert router.score(v, 2000) >= score >= router.score(v, 5)


@pytest.mark.parametrize(
    "vector", [np.ones(DIM + 1), np.full(DIM, np.nan), np.full(DIM, np.inf), np.zeros(0), np.ones((2, DIM))]
)
def test_bad_vector_goes_strong(vector: np.ndarray[Any, Any]) -> None:
    """A vector of the wrong size or not finite scores 0.0 (strong branch) instead of raising."""
    assert _router().score(vector) == 0.0


def _synthetic(n: int, seed: int) -> RoutingData:
    """Two topics in two directions: in topic 1 only the strong model is right."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 2, n)
    centres = np.eye(DIM)[[0, 1]]
    x = centres[topics] + 0.3 * rng.normal(size=(n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    strong = rng.random(n) < 0.9
    weak = np.where(topics == 0, strong, rng.random(n) < 0.2)
    ones = np.ones(n, dtype=np.int64)
    return RoutingData(x.astype(np.float32), topics, ("easy", "hard"), strong, weak, 50 * ones, ones, ones)


def test_training_beats_random_on_unseen_rows() -> None:
    """Trained on one sample, the threshold reaches the target on another, cheaper than random."""
    router, report = train_router(_synthetic(400, 0), TrainingOptions(target_quality=0.95), "test", {})
    assert report["out_of_fold"]["quality_ratio"] >= 0.96
    test = _synthetic(400, 1)
    outcomes = Outcomes(test.strong_correct, test.weak_correct, *test.costs(TrainingOptions().prices))
    scores = scores_of(router, test)
    assert choose_threshold(scores, outcomes, 0.0) <= scores.min()  # nothing strong when any quality will do
    points = curve(scores, outcomes)
    assert points.strong_share[0] == 0.0 and points.strong_share[-1] == 1.0
    assert abs(points.quality_ratio[-1] - 1.0) < 1e-12 and abs(points.cost_ratio[-1] - 1.0) < 1e-9
    strong = scores < router.threshold
    quality = np.where(strong, test.strong_correct, test.weak_correct).mean() / test.strong_correct.mean()
    assert quality >= 0.95
    assert strong.mean() < 0.7  # random routing would need about 95% of the rows on the strong model
