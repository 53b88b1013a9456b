"""The error analysis (issue 30): per-class figures, most-confused pairs, McNemar's test with Holm's correction,
agreement across seeds and calibration, checked against hand computation, scipy and torchmetrics; the API's tables
and the report's section."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import ASSIGNMENT_RUNS, make_study

import cnnkit
from cnnkit.report import analysis as an
from cnnkit.report import errors as report_errors
from cnnkit.report.render import render_html
from cnnkit.results import errors as er
from cnnkit.results.reading import load_predictions

SHIPPED = Path(__file__).resolve().parent.parent / "examples" / "results" / "assignment"
ADAM = SHIPPED / "cifar10-pooling_cnn-adam-seed0"


def hand_f1(y_true: np.ndarray, y_pred: np.ndarray, c: int) -> tuple[float, float, float, int]:
    """Precision, recall, F1 and support of class c, counted image by image."""
    tp = fp = fn = 0
    for t, p in zip(y_true.tolist(), y_pred.tolist(), strict=True):
        tp += t == c and p == c
        fp += t != c and p == c
        fn += t == c and p != c
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall), tp + fn


# ----------------------------------------------------------------------------------------------- per class
def test_f1_of_each_cifar10_class_of_the_shipped_adam_run_equals_hand_computation() -> None:
    pred = load_predictions(ADAM)
    assert pred is not None
    table = cnnkit.load_study(SHIPPED).per_class()
    adam = table[(table.dataset == "cifar10") & (table.optimizer == "adam")].set_index("class")
    assert list(adam.index) == list(pred.class_names) == ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                                           "frog", "horse", "ship", "truck"]  # fmt: skip
    for c, name in enumerate(pred.class_names):
        precision, recall, f1, support = hand_f1(pred.y_true, pred.y_pred, c)
        assert adam.loc[name, "precision"] == pytest.approx(precision, abs=1e-12)
        assert adam.loc[name, "recall"] == pytest.approx(recall, abs=1e-12)
        assert adam.loc[name, "f1"] == pytest.approx(f1, abs=1e-12)
        assert adam.loc[name, "support"] == support == 1000
    assert adam["f1"].idxmin() == "cat" and round(adam.loc["cat", "f1"], 3) == 0.456


def test_per_class_figures_equal_torchmetrics_with_average_none() -> None:
    torch = pytest.importorskip("torch")
    from torchmetrics.classification import MulticlassF1Score, MulticlassPrecision, MulticlassRecall

    pred = load_predictions(ADAM)
    assert pred is not None
    scores = er.ClassScores.from_confusion(pred.confusion)
    target, preds = torch.from_numpy(pred.y_true), torch.from_numpy(pred.y_pred)
    for metric, ours in ((MulticlassPrecision, scores.precision), (MulticlassRecall, scores.recall),
                         (MulticlassF1Score, scores.f1)):  # fmt: skip
        theirs = metric(num_classes=10, average=None)(preds, target).numpy()
        assert np.allclose(ours, theirs, atol=1e-6)
    # a class never predicted and one never present score 0, as torchmetrics' zero_division=0
    confusion = np.array([[3, 1, 0], [2, 0, 0], [0, 0, 0]])
    empty = er.ClassScores.from_confusion(confusion)
    y_true, y_pred = torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 1, 0, 0])
    for metric, ours in ((MulticlassPrecision, empty.precision), (MulticlassRecall, empty.recall),
                         (MulticlassF1Score, empty.f1)):  # fmt: skip
        assert np.allclose(ours, metric(num_classes=3, average=None)(y_pred, y_true).numpy(), atol=1e-6)


def test_class_stats_give_means_and_t_intervals_over_seeds() -> None:
    a = er.ClassScores.from_confusion(np.array([[8, 2], [1, 9]]))
    b = er.ClassScores.from_confusion(np.array([[6, 4], [3, 7]]))
    stats = er.class_stats([a, b])
    assert stats.seeds == 2 and stats.support == (10.0, 10.0)
    assert stats.recall[0].mean == pytest.approx(0.7)
    sd = np.std([0.8, 0.6], ddof=1)
    assert stats.recall[0].half_width == pytest.approx(12.7062047 * sd / math.sqrt(2), rel=1e-6)
    assert er.class_stats([a]).f1[0].half_width is None


# ----------------------------------------------------------------------------------------------- confusions
def test_most_confused_pair_of_the_shipped_adam_run_equals_hand_count() -> None:
    pred = load_predictions(ADAM)
    assert pred is not None
    counts: dict[tuple[int, int], int] = {}
    for t, p in zip(pred.y_true.tolist(), pred.y_pred.tolist(), strict=True):
        if t != p:
            counts[(t, p)] = counts.get((t, p), 0) + 1
    (true, predicted), count = max(counts.items(), key=lambda item: item[1])
    assert (pred.class_names[true], pred.class_names[predicted], count) == ("dog", "cat", 185)
    pairs = cnnkit.load_study(SHIPPED).confused_pairs()
    adam = pairs[(pairs.dataset == "cifar10") & (pairs.optimizer == "adam")]
    assert len(adam) == 5 and adam.iloc[0][["true", "predicted", "count"]].tolist() == ["dog", "cat", 185]
    assert list(adam["count"]) == sorted(counts.values(), reverse=True)[:5]


def test_confused_pairs_sum_the_seeds_and_keep_each_seeds_count() -> None:
    one = np.array([[5, 2, 1], [3, 4, 0], [0, 2, 6]])
    two = np.array([[6, 1, 1], [1, 6, 0], [0, 3, 5]])
    pairs = er.confused_pairs([one, two], k=3)
    assert [(p.true, p.predicted, p.count, p.per_seed) for p in pairs] == [(2, 1, 5, (2, 3)), (1, 0, 4, (3, 1)),
                                                                           (0, 1, 3, (2, 1))]  # fmt: skip
    tied = er.confused_pairs([np.array([[0, 2], [2, 0]])])
    assert [(p.true, p.predicted) for p in tied] == [(0, 1), (1, 0)]  # ties: by true class, then predicted
    assert er.confused_pairs([np.eye(3, dtype=int)], k=5) == []


# ----------------------------------------------------------------------------------------------- McNemar
def test_mcnemar_on_two_small_synthetic_prediction_sets_equals_scipy_and_the_binomial_by_hand() -> None:
    from scipy.stats import binomtest

    y_true = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    pred_a = np.array([0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 1, 2])  # wrong on images 8, 9
    pred_b = np.array([1, 0, 0, 2, 1, 2, 0, 1, 2, 1, 0, 0])  # wrong on 0, 1, 2, 3, 9, 10, 11
    test = er.mcnemar(y_true, pred_a, pred_b)
    # a right and b wrong: 0, 1, 2, 3, 10, 11; b right and a wrong: 8; both wrong: 9
    assert (test.only_a, test.only_b, test.both_wrong, test.both_right) == (6, 1, 1, 4)
    assert test.p == binomtest(6, 7, 0.5).pvalue
    by_hand = 2 * sum(math.comb(7, i) for i in range(0, 2)) / 2**7  # two-sided: P(X <= 1) + P(X >= 6)
    assert test.p == pytest.approx(by_hand, rel=1e-12) == pytest.approx(0.125)
    assert er.mcnemar(y_true, pred_b, pred_a).p == test.p  # symmetric
    same = er.mcnemar(y_true, pred_a, pred_a)
    assert same.discordant == 0 and same.p == 1.0


def test_holm_adjusts_step_down_and_monotone() -> None:
    assert er.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert er.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert er.holm([]) == []


def test_mcnemar_of_net_1_against_net_2_on_mnist_with_adadelta_in_the_shipped_assignment() -> None:
    study = an.load_study(SHIPPED)
    analysis = report_errors.find_errors(study.groups)
    tests = [t for t in analysis.tests if t.vary == "architecture" and t.a["optimizer"] == "adadelta"]
    assert len(tests) == 1 and len(analysis.tests) == 7  # 4 pairs on MNIST, 3 on CIFAR-10: one setting apart
    test = tests[0]
    assert (test.a["architecture"], test.b["architecture"]) == ("pooling_cnn", "strided_cnn")
    a, b = (load_predictions(SHIPPED / f"mnist-{net}-adadelta-seed0") for net in ("pooling_cnn", "strided_cnn"))
    assert a is not None and b is not None
    only_a = int(np.sum((a.y_pred == a.y_true) & (b.y_pred != b.y_true)))
    only_b = int(np.sum((a.y_pred != a.y_true) & (b.y_pred == b.y_true)))
    assert (test.test.only_a, test.test.only_b) == (only_a, only_b) == (194, 86)
    assert test.test.p < 1e-9 and test.differ
    assert analysis.one_seed_tests


# ----------------------------------------------------------------------------------------------- seeds
def test_agreement_counts_the_images_every_seed_and_some_seeds_get_wrong() -> None:
    y_true = np.array([0, 1, 2, 3, 4])
    seeds = [np.array([1, 1, 2, 0, 4]), np.array([1, 1, 0, 0, 4]), np.array([2, 1, 2, 0, 4])]
    agreement = er.agreement(y_true, seeds)
    assert agreement.all_wrong.tolist() == [0, 3] and agreement.some_wrong == 1 and agreement.none_wrong == 2


# ----------------------------------------------------------------------------------------------- calibration
def test_calibration_equals_torchmetrics_ece_and_mce_with_15_bins() -> None:
    torch = pytest.importorskip("torch")
    from torchmetrics.classification import MulticlassCalibrationError

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (2000, 10))
    logits[:50, 0] = 200.0  # confidences of exactly 1 in float32: torchmetrics gives them a bin of their own
    probs = torch.softmax(torch.from_numpy(logits).float(), dim=1)
    y_true = rng.integers(0, 10, 2000)
    ours = er.calibration(probs.numpy(), y_true)
    target = torch.from_numpy(y_true)
    for norm, value in (("l1", ours.ece), ("max", ours.mce)):
        theirs = MulticlassCalibrationError(num_classes=10, n_bins=15, norm=norm)(probs, target)
        assert value == pytest.approx(float(theirs), abs=1e-6)
    assert ours.n_bins == 15 and len(ours.count) == 16 and ours.count.sum() == 2000 and ours.count[15] >= 50


def test_confident_mistakes_are_the_most_confident_wrong_predictions() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    y_true = np.array([1, 1, 1, 0, 0])
    mistakes = er.confident_mistakes(probs, y_true, k=2)
    assert [(m.index, m.true, m.predicted) for m in mistakes] == [(3, 0, 1), (0, 1, 0)]
    assert mistakes[0].confidence == pytest.approx(0.95) and mistakes[0].p_true == pytest.approx(0.05)


# ----------------------------------------------------------------------------------------------- API
def test_the_api_tables_have_the_issues_columns(tmp_path: Path) -> None:
    from cnnkit.training.settings import config_names

    settings = config_names()
    study = cnnkit.load_study(SHIPPED)
    by_run = study.per_class()
    assert list(by_run.columns) == [*settings, "class", "precision", "recall", "f1", "support"]
    assert len(by_run) == 7 * 10
    by_config = study.per_class(by="configuration")  # one seed each: no interval columns
    assert list(by_config.columns) == [*(s for s in settings if s != "seed"), "class", "precision", "recall", "f1",
                                       "support"]  # fmt: skip
    assert study.calibration().empty and list(study.calibration().columns) == [*settings, "ece", "mce", "n_bins"]
    pairs = study.confused_pairs(k=3)
    assert list(pairs.columns) == [*(s for s in settings if s != "seed"), "true", "predicted", "count"]
    assert len(pairs) == 7 * 3 and pairs["count"].is_monotonic_decreasing
    with pytest.raises(cnnkit.UsageError):
        study.per_class(by="seed")
    with pytest.raises(cnnkit.UsageError):
        study.confused_pairs(k=-1)

    seeded = cnnkit.load_study(make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:2], seeds=3))
    table = seeded.per_class(by="configuration")
    assert len(table) == 2 * 10 and {"precision_low", "precision_high", "recall_low", "f1_high"} <= set(table.columns)
    row = table.iloc[0]
    per_run = seeded.per_class()
    first = per_run[(per_run.optimizer == row.optimizer) & (per_run["class"] == row["class"])]
    assert len(first) == 3 and row.f1 == pytest.approx(first.f1.mean())
    assert row.f1_low < row.f1 < row.f1_high


# ----------------------------------------------------------------------------------------------- report
@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Error analysis", "Errors on MNIST", "dog → cat, 185 images", "McNemar", "Holm",
                "calibration is left out", "5 for net_1 · Adadelta (0.783)"]),
        ("es", ["Análisis de errores", "Errores en MNIST", "perro → gato, 185 imágenes", "McNemar", "Holm",
                "la calibración queda fuera", "5 para net_1 · Adadelta (0,783)"]),
    ],
)  # fmt: skip
def test_the_shipped_assignments_report_has_the_error_analysis(lang: str, words: list[str]) -> None:
    html = render_html(an.load_study(SHIPPED), lang)
    section = html.split('<section id="errors">')[1].split("</section>")[0]
    for word in words:
        assert word in section, word
    assert html.index('id="results"') < html.index('id="errors"') < html.index('id="discussion"')
    assert section.count("<h3") == 2  # one per dataset
    assert "194" in section and "86" in section  # net_1 against net_2 with Adadelta on MNIST


def test_a_study_without_several_configurations_per_dataset_tests_nothing(tmp_path: Path) -> None:
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[4:5])
    html = render_html(an.load_study(root), "en")
    section = html.split('<section id="errors">')[1].split("</section>")[0]
    assert "McNemar" not in section and "0 tests" not in section


# ----------------------------------------------------------------------------------------------- a new run
@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two seeds of a tiny run on synthetic MNIST-shaped data: (study directory, data directory)."""
    from helpers import write_mnist_npz

    data = tmp_path_factory.mktemp("data")
    write_mnist_npz(data)
    out = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        cnnkit.run("mnist", "net_2", epochs=1, subset=400, seed=seed, data_dir=data, out=out, quiet=True)
    return out / "single", data


@pytest.mark.slow
def test_a_new_run_keeps_probabilities_and_calibration_gives_torchmetrics_ece(two_seeds: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    from torchmetrics.classification import MulticlassCalibrationError

    study_dir, _ = two_seeds
    table = cnnkit.load_study(study_dir).calibration()
    assert list(table.seed) == [0, 1] and set(table.n_bins) == {15}
    dirs = {int(r.settings["seed"]): r.dir for r in cnnkit.load_study(study_dir).runs}
    for row in table.itertuples():
        pred = load_predictions(dirs[row.seed])
        assert pred is not None and pred.probabilities is not None and pred.probabilities.shape == (10000, 10)
        probs, target = torch.from_numpy(pred.probabilities), torch.from_numpy(pred.y_true)
        assert row.ece == pytest.approx(float(MulticlassCalibrationError(num_classes=10, n_bins=15)(probs, target)),
                                        abs=1e-6)  # fmt: skip
        mce = MulticlassCalibrationError(num_classes=10, n_bins=15, norm="max")(probs, target)
        assert row.mce == pytest.approx(float(mce), abs=1e-6)


@pytest.mark.slow
def test_the_report_of_new_runs_shows_calibration_and_the_galleries_from_the_data_files(
    two_seeds: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_dir, data = two_seeds
    monkeypatch.setenv("CNNKIT_DATA_DIR", str(data))
    study = an.load_study(study_dir)
    config = report_errors.find_errors(study.groups).datasets[0].configs[0]
    assert config.agreement is not None and config.agreement.seeds == 2
    html = render_html(study, "en")
    section = html.split('<section id="errors">')[1].split("</section>")[0]
    assert "Calibration" in section and "Reliability diagram" in section and "Agreement across seeds" in section
    assert "calibration is left out" not in section
    shown = min(len(config.agreement.all_wrong), report_errors.MISSED_SHOWN) + len(config.mistakes)
    assert section.count("<img") == shown > 0  # both galleries, read from the data files
    # without the data files the counts and a list stay, the images go
    monkeypatch.setenv("CNNKIT_DATA_DIR", str(tmp_path))
    bare = render_html(an.load_study(study_dir), "es").split('<section id="errors">')[1].split("</section>")[0]
    assert "<img" not in bare and "no están en el directorio de datos" in bare


def test_the_gallery_is_left_out_when_the_data_files_differ_from_the_recorded_ones(tmp_path: Path) -> None:
    from cnnkit_plugins.mnist import MNIST_SOURCES, MNIST_SPEC
    from helpers import write_mnist_npz

    from cnnkit.data.formats import file_digest
    from cnnkit.data.recorded import recorded_test_images

    path = write_mnist_npz(tmp_path, seed=1)
    with np.load(path) as z:
        y_test, x_test = z["y_test"], z["x_test"]
    record = {"source": "mnist.npz", "files": [{"name": "mnist.npz", "sha256": file_digest(path)}]}
    images = recorded_test_images(MNIST_SPEC, MNIST_SOURCES, tmp_path, record, y_test, [3, 1])
    assert images is not None and np.array_equal(images[..., 0], x_test[[3, 1]])
    other = {"files": [{"name": "mnist.npz", "sha256": "0" * 64}]}
    assert recorded_test_images(MNIST_SPEC, MNIST_SOURCES, tmp_path, other, y_test, [3]) is None
    assert recorded_test_images(MNIST_SPEC, MNIST_SOURCES, tmp_path, record, (y_test + 1) % 10, [3]) is None
    shutil.move(path, tmp_path / "elsewhere.npz")
    assert recorded_test_images(MNIST_SPEC, MNIST_SOURCES, tmp_path, record, y_test, [3]) is None
