"""Fitting the learned router and choosing its threshold, on training rows only.

The topic classifier is scikit-learn's multinomial logistic regression (imported while fitting,
the ``router`` extra). Topics are the training files when there are several (MMLU's domains);
a single file is split into k-means clusters of its embeddings instead. Each topic's "strong
needed" rate is smoothed towards the overall rate (``SMOOTHING`` pseudo-rows), so a small topic
cannot claim certainty. When the rows carry their texts, a TF-IDF topic classifier over
``learned.terms`` is fitted too (``fit_lexical``) and blended with the embedding's.

The threshold is chosen on out-of-fold scores: the rows are split into ``FOLDS`` folds, each
fold is scored by a model fitted on the others, and the cheapest threshold whose quality ratio on
those scores reaches ``target_quality + margin`` is kept. The margin is the safety for unseen
prompts (a threshold chosen on the rows it is measured on would land just at the target, and
half the time below it on new ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from breakwater.engine.router.dataset import Floats, Prices, RoutingData
from breakwater.engine.router.evaluation import Outcomes, choose_threshold, curve, operating_point, threshold_for_share
from breakwater.engine.router.learned import CostWeighting, LearnedRouter, LexicalModel, TopicModel, terms

__all__ = ["FOLDS", "MARGIN", "SMOOTHING", "TrainingOptions", "fit_lexical", "fit_topics", "train_router"]

FOLDS = 5
#: pseudo-rows at the overall rate added to every topic's count
SMOOTHING = 5.0
#: inverse L2 strength of the topic classifier (chosen by cross-validation on the MMLU tune split)
TOPIC_C = 10.0
#: quality ratio added to the target when choosing the threshold on out-of-fold scores
MARGIN = 0.01
#: the lexical classifier: vocabulary cap (most frequent terms in 2+ training prompts), inverse L2
#: strength, and the blend of its logits with the embedding's (chosen by cross-validation on the
#: MMLU tune split, docs/routing.md)
LEXICAL_TERMS = 5000
LEXICAL_MIN_DF = 2
LEXICAL_C = 30.0
EMBEDDING_WEIGHT = 0.7
LEXICAL_WEIGHT = 0.7
#: decimals kept of the lexical weights (keeps the artifact small; far below their spread)
LEXICAL_DECIMALS = 5
#: rows per k-means cluster when a single file has to be split into topics
ROWS_PER_CLUSTER = 150
MAX_CLUSTERS = 16


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    target_quality: float = 0.95
    margin: float = MARGIN
    #: instead of a target quality: the share of prompts the threshold sends to the cheap branch
    cheap_share: float | None = None
    prices: Prices = field(default_factory=Prices)
    cost_weighted: bool = True
    seed: int = 0


def fit_topics(data: RoutingData, seed: int = 0) -> TopicModel:
    """The topic classifier and each topic's smoothed "strong needed" rate, fitted on ``data``."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression

    x = data.vectors.astype(np.float64)
    needed = data.strong_needed.astype(np.float64)
    labels, names = data.topics, data.topic_names
    if len(np.unique(labels)) < 2:
        clusters = min(MAX_CLUSTERS, len(data) // ROWS_PER_CLUSTER)
        if clusters < 2:
            return _one_topic(x.shape[1], float(needed.mean()) if len(data) else 0.0)
        labels = KMeans(clusters, n_init=3, random_state=seed).fit_predict(x).astype(np.int64)
        names = tuple(f"cluster-{i}" for i in range(clusters))
    present = np.unique(labels)
    if len(present) < 2:
        return _one_topic(x.shape[1], float(needed.mean()))
    classifier = LogisticRegression(C=TOPIC_C, max_iter=3000).fit(x, labels)
    overall = float(needed.mean())
    counts = np.bincount(labels, minlength=len(names))[present]
    hits = np.bincount(labels, weights=needed, minlength=len(names))[present]
    rates = (hits + SMOOTHING * overall) / (counts + SMOOTHING)
    weights, bias = _softmax_rows(classifier, len(present))
    return TopicModel(
        topics=tuple(names[i] for i in present),
        weights=weights,
        bias=bias,
        rates=np.asarray(rates, dtype=np.float64),
        lexical=None if data.texts is None else fit_lexical(data.texts, labels, len(present)),
    )


def _softmax_rows(classifier: Any, classes: int) -> tuple[Floats, Floats]:
    """A fitted scikit-learn logistic regression as softmax (weights, bias), one row per class."""
    weights = np.asarray(classifier.coef_, dtype=np.float64)
    bias = np.asarray(classifier.intercept_, dtype=np.float64)
    if classes == 2:  # scikit-learn keeps one row for two classes: as a softmax, (0, w)
        weights = np.vstack([np.zeros_like(weights), weights])
        bias = np.concatenate([[0.0], bias])
    return weights, bias


def fit_lexical(texts: tuple[str, ...], labels: Any, classes: int) -> LexicalModel | None:
    """The TF-IDF topic classifier over ``learned.terms``; None when too few terms recur."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=terms, sublinear_tf=True, max_features=LEXICAL_TERMS, min_df=LEXICAL_MIN_DF)
    try:
        features = vectorizer.fit_transform(texts)
    except ValueError:  # no term in two prompts
        return None
    classifier = LogisticRegression(C=LEXICAL_C, max_iter=3000).fit(features, labels)
    weights, bias = _softmax_rows(classifier, classes)
    return LexicalModel(
        vocabulary={str(t): int(i) for t, i in vectorizer.vocabulary_.items()},
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        weights=np.round(weights, LEXICAL_DECIMALS),
        bias=np.round(bias, LEXICAL_DECIMALS),
        embedding_weight=EMBEDDING_WEIGHT,
        lexical_weight=LEXICAL_WEIGHT,
    )


def _one_topic(dimensions: int, rate: float) -> TopicModel:
    return TopicModel(("all",), np.zeros((1, dimensions)), np.zeros(1), np.array([rate]))


def cost_weighting(data: RoutingData, prices: Prices) -> CostWeighting:
    """The strong branch's extra cost per prompt token and per expected answer, at these prices."""
    million = 1_000_000
    input_gap = float(prices.strong.input - prices.weak.input) / million
    output_gap = (
        float(prices.strong.output) * float(data.strong_output_tokens.mean())
        - float(prices.weak.output) * float(data.weak_output_tokens.mean())
    ) / million
    return CostWeighting(max(input_gap, 0.0), max(output_gap, 0.0), float(np.median(data.prompt_tokens)))


def _router(model: TopicModel, cost: CostWeighting | None, threshold: float, identity: str) -> LearnedRouter:
    return LearnedRouter(embedder_identity=identity, threshold=threshold, model=model, cost=cost)


def scores_of(router: LearnedRouter, data: RoutingData) -> Floats:
    """``router.score`` of every row (with its prompt tokens, and its text when the data has it)."""
    texts = data.texts if data.texts is not None else (None,) * len(data)
    return np.array(
        [router.score(v, int(t), s) for v, t, s in zip(data.vectors, data.prompt_tokens, texts, strict=True)],
        dtype=np.float64,
    )


def out_of_fold_scores(data: RoutingData, options: TrainingOptions, identity: str) -> Floats:
    """Each row scored by a model fitted without its fold (folds drawn per topic, seeded)."""
    rng = np.random.default_rng(options.seed)
    fold = np.empty(len(data), dtype=np.int64)
    for topic in np.unique(data.topics):
        rows = np.flatnonzero(data.topics == topic)
        fold[rows] = rng.permutation(len(rows)) % FOLDS
    scores = np.empty(len(data), dtype=np.float64)
    for k in range(FOLDS):
        held = fold == k
        if not held.any():
            continue
        fitted = data.subset(~held)
        cost = cost_weighting(fitted, options.prices) if options.cost_weighted else None
        router = _router(fit_topics(fitted, options.seed), cost, 0.5, identity)
        scores[held] = scores_of(router, data.subset(held))
    return scores


def outcomes_of(data: RoutingData, prices: Prices) -> Outcomes:
    strong_cost, weak_cost = data.costs(prices)
    return Outcomes(data.strong_correct, data.weak_correct, strong_cost, weak_cost)


def train_router(
    data: RoutingData, options: TrainingOptions, identity: str, sources: dict[str, str]
) -> tuple[LearnedRouter, dict[str, Any]]:
    """Fit on all of ``data``, choose the threshold on its out-of-fold scores.

    Args:
        data: the training rows.
        options: target quality, margin, prices, cost weighting.
        identity: the embedder that made ``data.vectors``.
        sources: training file name -> its sha256, for the artifact's metadata.

    Returns:
        The router, and the training report (out-of-fold operating point and curve).
    """
    outcomes = outcomes_of(data, options.prices)
    oof = out_of_fold_scores(data, options, identity)
    if options.cheap_share is not None:
        threshold = threshold_for_share(oof, options.cheap_share)
        rule = f"the out-of-fold score above which {options.cheap_share:.0%} of training prompts go cheap"
    else:
        threshold = choose_threshold(oof, outcomes, options.target_quality + options.margin)
        rule = (
            f"cheapest threshold whose quality ratio on {FOLDS}-fold out-of-fold training scores "
            f">= target_quality + {options.margin}"
        )
    oof_curve = curve(oof, outcomes)
    report = {
        "out_of_fold": operating_point(oof, outcomes, threshold),
        "curve": [p.as_dict() for p in oof_curve.summary()],
    }
    cost = cost_weighting(data, options.prices) if options.cost_weighted else None
    metadata = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_files": sources,
        "rows": len(data),
        "strong_needed_rows": int(data.strong_needed.sum()),
        "target_quality": options.target_quality,
        "threshold_rule": rule,
        "prices_usd_per_million": {
            "strong": [str(options.prices.strong.input), str(options.prices.strong.output)],
            "weak": [str(options.prices.weak.input), str(options.prices.weak.output)],
        },
        "training_curve": report,
    }
    model = fit_topics(data, options.seed)
    router = LearnedRouter(embedder_identity=identity, threshold=threshold, model=model, cost=cost, metadata=metadata)
    return router, report
