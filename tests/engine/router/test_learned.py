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
    LexicalModel,
    RouterArtifactError,
    TopicModel,
    load_router,
    save_router,
    terms,
)
from breakwater.engine.router.training import TrainingOptions, scores_of, train_router

DIM = 8


def _lexical() -> LexicalModel:
    """Three terms, each pulling hard towards one topic ("algebra" towards the easy topic a)."""
    vocabulary = {"algebra": 0, "law": 1, "tort law": 2}
    weights = 8.0 * np.eye(3)
    return LexicalModel(vocabulary, np.array([1.0, 1.5, 2.0]), weights, np.zeros(3), 0.7, 0.7)


def _router(cost: CostWeighting | None = None, lexical: bool = False) -> LearnedRouter:
    rng = np.random.default_rng(1)
    model = TopicModel(
        ("a", "b", "c"),
        rng.normal(size=(3, DIM)),
        np.zeros(3),
        np.array([0.1, 0.5, 0.9]),
        _lexical() if lexical else None,
    )
    return LearnedRouter("test:embedder", 0.6, model, cost, {"rows": 3})


def _unit(seed: int) -> np.ndarray[Any, Any]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("lexical", [False, True])
def test_round_trip(tmp_path: Path, lexical: bool) -> None:
    """A saved artifact loads back with the same identity, threshold, metadata and scores."""
    router = _router(CostWeighting(1e-5, 3e-5, 70.0), lexical)
    save_router(router, tmp_path / "r.json")
    loaded = load_router(tmp_path / "r.json")
    assert loaded.format == FORMAT
    assert (loaded.embedder_identity, loaded.threshold, loaded.metadata) == ("test:embedder", 0.6, {"rows": 3})
    for seed in range(5):
        assert loaded.score(_unit(seed)) == router.score(_unit(seed))
        assert loaded.score(_unit(seed), 500) == router.score(_unit(seed), 500)
        text = "Tort law and algebra: law?"
        assert loaded.score(_unit(seed), 500, text=text) == router.score(_unit(seed), 500, text=text)
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["format"] == "breakwater-router/2" and body["embedder"] == "test:embedder"
    assert (body["model"]["lexical"] is None) is not lexical


def test_terms() -> None:
    """Lowercased [a-z0-9]+ words, then the word bigrams; punctuation only separates."""
    assert terms("Tort-law, 2 Cases!") == ["tort", "law", "2", "cases", "tort law", "law 2", "2 cases"]
    assert terms("") == [] and terms("?!") == []


def test_text_moves_the_score_and_none_is_the_embedding_alone() -> None:
    """With text, the words pull the topic; without text (or with unknown words) the embedding decides."""
    plain, lexical = _router(), _router(lexical=True)
    v = _unit(3)
    assert lexical.score(v) == plain.score(v)  # no text: the embedding model alone
    assert lexical.score(v, 80) == plain.score(v, 80)
    assert plain.score(v, text="algebra") == plain.score(v)  # no lexical model: text ignored
    assert lexical.score(v, text="algebra algebra") > lexical.score(v, text="tort law") > 0.0
    assert lexical.score(v, text="algebra") > 0.85  # topic a: strong needed at rate 0.1
    assert lexical.score(v, text="tort law tort law") < 0.3  # topics b and c: rates 0.5, 0.9
    unknown = lexical.score(v, text="zzz qqq")  # no known term: the lexical bias only (zeros here)
    assert 0.0 <= unknown <= 1.0
    assert lexical.score(v, text=None) == plain.score(v)


def test_first_version_refused(tmp_path: Path) -> None:
    """A breakwater-router/1 artifact (no lexical model) is refused as another version."""
    body = _router().to_json()
    body["format"] = "breakwater-router/1"
    del body["model"]["lexical"]
    (tmp_path / "r.json").write_text(json.dumps(body))
    with pytest.raises(RouterArtifactError, match=r"'breakwater-router/1' is an artifact of another version"):
        load_router(tmp_path / "r.json")


def test_missing_file(tmp_path: Path) -> None:
    """A missing artifact is a RouterArtifactError that says so."""
    with pytest.raises(RouterArtifactError, match="no such file"):
        load_router(tmp_path / "absent.json")


def test_not_json(tmp_path: Path) -> None:
    """A file that is not JSON is refused as such."""
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(RouterArtifactError, match="not JSON"):
        load_router(tmp_path / "r.json")


@pytest.mark.parametrize("found", ["breakwater-router/1", "breakwater-router/3", None, 1])
def test_other_version(tmp_path: Path, found: object) -> None:
    """Another or no format version is refused, naming both versions."""
    body = _router().to_json() | {"format": found}
    (tmp_path / "r.json").write_text(json.dumps(body))
    with pytest.raises(RouterArtifactError, match=r"an artifact of another version.*breakwater-router/2"):
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
        (lambda b: b["model"]["lexical"].update(kind="bm25"), "tfidf-softmax"),
        (lambda b: b["model"]["lexical"].update(idf=[1.0, 2.0]), "idf needs one entry per term"),
        (lambda b: b["model"]["lexical"].update(terms=["law", "law", "tort"]), "distinct"),
        (lambda b: b["model"]["lexical"].update(lexical_weight=-1), "lexical_weight"),
        (lambda b: b["model"]["lexical"].pop("weights"), "weights"),
    ],
)
def test_malformed(tmp_path: Path, change: Any, words: str) -> None:
    """A missing or malformed field is a RouterArtifactError naming the field."""
    body = _router(lexical=True).to_json()
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
    assert _router(lexical=True).score(vector, 10, text="algebra") == 0.0


def test_text_that_is_not_a_string_is_ignored() -> None:
    """A non-string text never raises: it is treated as no text."""
    router = _router(lexical=True)
    assert router.score(_unit(2), text=b"algebra") == router.score(_unit(2))  # type: ignore[arg-type]


def _synthetic(n: int, seed: int, texts: bool = False, noise: float = 0.3) -> RoutingData:
    """Two topics in two directions: in topic 1 only the strong model is right.

    With ``texts``, each prompt also has words: its topic's word most of the time, plus filler.
    """
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 2, n)
    centres = np.eye(DIM)[[0, 1]]
    x = centres[topics] + noise * rng.normal(size=(n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    strong = rng.random(n) < 0.9
    weak = np.where(topics == 0, strong, rng.random(n) < 0.2)
    ones = np.ones(n, dtype=np.int64)
    words = None
    if texts:
        cue = np.where(rng.random(n) < 0.9, topics, 1 - topics)
        words = tuple(f"Question {i}: {('sum', 'proof')[c]} of the {('parts', 'lemma')[c]}?" for i, c in enumerate(cue))
    return RoutingData(x.astype(np.float32), topics, ("easy", "hard"), strong, weak, 50 * ones, ones, ones, words)


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


def test_training_with_texts_fits_a_lexical_model_that_helps(tmp_path: Path) -> None:
    """With prompt texts, training fits the lexical model; where the embedding is noisy, words help."""
    train = _synthetic(400, 0, texts=True, noise=1.5)
    router, _ = train_router(train, TrainingOptions(target_quality=0.95), "test", {})
    lexical = router.model.lexical
    assert lexical is not None and {"sum", "proof", "sum of"} <= set(lexical.vocabulary)
    test = _synthetic(400, 1, texts=True, noise=1.5)
    with_text = scores_of(router, test)
    without = scores_of(
        router, RoutingData(*(getattr(test, f) for f in RoutingData.__dataclass_fields__ if f != "texts"))
    )
    hard = test.topics == 1
    separation = with_text[~hard].mean() - with_text[hard].mean()
    assert separation > without[~hard].mean() - without[hard].mean() + 0.05
    save_router(router, tmp_path / "r.json")
    loaded = load_router(tmp_path / "r.json")
    assert np.array_equal(scores_of(loaded, test), with_text)


def test_training_without_texts_has_no_lexical_model() -> None:
    """Data without texts trains the embedding model alone (as in the CLI-free callers)."""
    router, _ = train_router(_synthetic(200, 0), TrainingOptions(), "test", {})
    assert router.model.lexical is None
