"""``breakwater router train | eval`` on small synthetic CSVs (cli/router.py)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from breakwater.cli.main import main
from breakwater.engine.router.learned import load_router

STRONG, WEAK = "big/model", "small-model"
TOPICS = {
    # the weak model is as good as the strong one on astronomy, and wrong on most contract law
    "astronomy": ["planet", "orbit", "telescope", "galaxy", "comet", "nebula", "star", "moon"],
    "law": ["contract", "plaintiff", "statute", "court", "tort", "damages", "defendant", "appeal"],
}
FILLER = ["which", "of", "the", "following", "is", "true", "about", "a", "an", "most", "likely"]


def _write(folder: Path, seed: int, rows: int = 120, responses: bool = False) -> list[str]:
    rng = random.Random(seed)
    folder.mkdir(exist_ok=True)
    paths = []
    for topic, words in TOPICS.items():
        path = folder / f"{topic}.csv"
        columns = ["prompt", WEAK, STRONG] + ([f"{WEAK}_response", f"{STRONG}_response"] if responses else [])
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for _ in range(rows):
                prompt = " ".join(rng.choice(words if rng.random() < 0.5 else FILLER) for _ in range(12)) + "?"
                strong = rng.random() < 0.9
                weak = strong if topic == "astronomy" else rng.random() < 0.2
                extra = ["B", "the answer is B"] if responses else []
                writer.writerow([prompt, weak, strong, *extra])
        paths.append(str(path))
    return paths


def _eval(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    train, test = _write(tmp_path / "train", 1), _write(tmp_path / "test", 2)
    code = main(["router", "eval", "--train", *train, "--test", *test, "--strong", STRONG, "--weak", WEAK, *extra])
    assert code == 0
    out = capsys.readouterr().out
    result: dict[str, object] = json.loads(out) if "--json" in extra else {"text": out}
    return result


def test_train_writes_an_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`train` writes an artifact that loads, names the embedder and records its training files."""
    data = _write(tmp_path / "data", 1, responses=True)
    out = tmp_path / "router.json"
    assert main(["router", "train", "--data", *data, "--strong", STRONG, "--weak", WEAK, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    router = load_router(out)
    assert router.embedder_identity == "local:wordllama-l2-supercat-256"
    assert 0.0 <= router.threshold <= 1.0
    assert set(router.metadata["training_files"]) == {"astronomy.csv", "law.csv"}
    assert router.metadata["rows"] == 240 and router.metadata["target_quality"] == 0.95


def test_eval_json_beats_random(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`eval --json` reaches the target on unseen rows for less than random routing costs."""
    result = _eval(tmp_path, capsys, "--json")
    for key in ("quality_ratio", "cost_ratio", "random_cost_ratio", "threshold", "strong_share", "curve"):
        assert key in result
    assert isinstance(result["quality_ratio"], float) and isinstance(result["cost_ratio"], float)
    assert isinstance(result["random_cost_ratio"], float)
    assert result["quality_ratio"] >= 0.93
    assert result["cost_ratio"] < result["random_cost_ratio"]
    assert 0.0 < result["cost_ratio"] < 1.0
    curve = result["curve"]
    assert isinstance(curve, list) and curve[0]["strong_share"] == 0.0 and curve[-1]["strong_share"] == 1.0
    assert set(curve[0]) == {"threshold", "strong_share", "quality_ratio", "cost_ratio"}


def test_eval_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json `eval` prints the curve and the operating point; --plot writes a PNG."""
    plot = tmp_path / "curve.png"
    result = _eval(tmp_path, capsys, "--plot", str(plot), "--strong-price", "5,15", "--weak-price", "0.5,0.5")
    assert "operating point" in str(result["text"]) and "random routing" in str(result["text"])
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_missing_file_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing CSV exits 1 with one line naming it, not a traceback."""
    argv = ["router", "train", "--data", str(tmp_path / "nope.csv"), "--strong", STRONG, "--weak", WEAK]
    code = main([*argv, "--out", str(tmp_path / "r.json")])
    assert code == 1
    err = capsys.readouterr().err
    assert "nope.csv: no such file" in err and "Traceback" not in err


def test_missing_column_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV without the named model column exits 1 naming the column."""
    data = _write(tmp_path / "data", 1, rows=5)
    code = main(["router", "train", "--data", *data, "--strong", "absent", "--weak", WEAK, "--out", "x.json"])
    assert code == 1
    assert "no column 'absent'" in capsys.readouterr().err


def test_bad_price_is_a_usage_error(tmp_path: Path) -> None:
    """A price that is not IN,OUT is refused by the argument parser (exit 2)."""
    with pytest.raises(SystemExit) as stop:
        main(["router", "eval", "--train", "a", "--test", "b", "--strong", "s", "--weak", "w", "--weak-price", "x"])
    assert stop.value.code == 2


def test_train_for_a_share_of_cheap_traffic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--cheap-share 0.3` chooses the threshold that sends 30% of the training prompts (their
    out-of-fold scores) to the cheap branch, instead of a target quality."""
    data = _write(tmp_path / "data", 1)
    out = tmp_path / "router.json"
    args = ["router", "train", "--data", *data, "--strong", STRONG, "--weak", WEAK, "--out", str(out)]
    assert main([*args, "--cheap-share", "0.3"]) == 0
    router = load_router(out)
    point = router.metadata["training_curve"]["out_of_fold"]
    assert abs((1 - point["strong_share"]) - 0.3) < 0.02
    assert "30% of training prompts go cheap" in router.metadata["threshold_rule"]
    capsys.readouterr()
    assert main([*args, "--cheap-share", "1.5"]) != 0


def test_threshold_for_share_edges() -> None:
    from breakwater.engine.router.evaluation import threshold_for_share

    scores = [0.9, 0.1, 0.5, 0.7]
    assert threshold_for_share(scores, 0.5) == 0.7  # 0.9 and 0.7 go cheap
    assert threshold_for_share(scores, 1.0) == 0.1
    assert threshold_for_share(scores, 0.0) > 0.9
    assert threshold_for_share([], 0.5) == 1.0
