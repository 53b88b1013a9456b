"""Unit tests of cnnkit.report.analysis on hand-made histories and synthetic studies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_study

from cnnkit.errors import DataError, UsageError
from cnnkit.report import analysis as an
from cnnkit.results import stats
from cnnkit.results.reading import confusion_matrix


def hist(train_loss, train_acc, val_loss, val_acc) -> an.History:
    return an.History(tuple(train_loss), tuple(train_acc), tuple(val_loss), tuple(val_acc))


def fake_group(metric_values: list[float], optimizer: str = "adam", metric: str = "test_accuracy") -> an.Group:
    runs = [
        an.Run(f"d-{optimizer}-{i}", Path("."), {"dataset": "d", "optimizer": optimizer, "seed": i}, {metric: v})
        for i, v in enumerate(metric_values)
    ]
    return an.Group(runs)


def test_best_epoch_is_one_based_first_minimum():
    assert an.best_epoch([1.0, 0.5, 0.7, 0.5]) == 2
    assert an.best_epoch([0.3]) == 1


def test_best_epoch_skips_a_nan_epoch_as_the_best_checkpoint_does():
    assert stats.best_epoch([0.5, 0.3, math.nan, 0.2]) == 4  # one rule for result.json and the report
    assert stats.best_epoch([0.5, None, 0.2]) == 3
    with pytest.raises(DataError):
        stats.best_epoch([math.nan])
    with pytest.raises(DataError):
        an.best_epoch([])


def test_diagnose_gaps_and_rise():
    h = hist([1.0, 0.5, 0.2, 0.1], [0.6, 0.8, 0.9, 0.95], [1.1, 0.6, 0.5, 0.6], [0.55, 0.75, 0.8, 0.82])
    fit = an.diagnose(h)
    assert fit.best_epoch == 3
    assert fit.val_loss_min == 0.5 and fit.val_loss_final == 0.6
    assert fit.val_loss_rise == pytest.approx(0.1)
    assert fit.val_loss_rise_rel == pytest.approx(0.2)
    assert fit.final_loss_gap == pytest.approx(0.5)
    assert fit.final_acc_gap == pytest.approx(0.13)
    assert fit.best_loss_gap == pytest.approx(0.3)
    assert fit.best_acc_gap == pytest.approx(0.1)
    assert fit.verdict == "strong"


@pytest.mark.parametrize(
    ("val_loss", "train_acc", "val_acc", "verdict"),
    [
        ([1.0, 0.8, 0.6, 0.5], [0.5, 0.6, 0.7, 0.75], [0.5, 0.6, 0.7, 0.74], "none"),  # still improving, no gap
        ([1.0, 0.5, 0.52, 0.53], [0.5, 0.6, 0.7, 0.75], [0.5, 0.6, 0.7, 0.74], "mild"),  # val loss +6 %, no gap
        ([1.0, 0.6, 0.55, 0.5], [0.5, 0.7, 0.8, 0.83], [0.5, 0.65, 0.75, 0.80], "mild"),  # gap 3 points only
        ([1.0, 0.5, 0.6, 0.7], [0.5, 0.7, 0.9, 0.99], [0.5, 0.65, 0.7, 0.70], "strong"),  # +40 % and 29 points
        ([1.0, 0.5, 0.6, 0.7], [0.5, 0.6, 0.7, 0.71], [0.5, 0.6, 0.7, 0.70], "mild"),  # rise without acc gap
    ],
)
def test_verdicts_for_hand_made_histories(val_loss, train_acc, val_acc, verdict):
    h = hist([1.0] * 4, train_acc, val_loss, val_acc)
    assert an.diagnose(h).verdict == verdict


def test_one_noisy_last_epoch_does_not_decide_the_verdict():
    """30 epochs, the validation loss at its lowest in the last epochs but for one spike at the very end: the end
    is the mean of the last 3 epochs against the lowest 3-epoch mean, so the spike alone is not overfitting."""
    val_loss = [1.0 - 0.02 * e for e in range(29)] + [0.52 * 1.15]
    acc = [0.5 + 0.01 * e for e in range(30)]
    fit = an.diagnose(hist([1.0] * 30, acc, val_loss, acc))
    assert an.end_window(30) == 3 and an.end_window(10) == 2 and an.end_window(4) == 1
    assert fit.val_loss_rise_rel < an.STRONG_VAL_LOSS_RISE and fit.verdict != "strong"
    assert fit.val_loss_final == pytest.approx((0.46 + 0.44 + 0.598) / 3)
    steady = an.diagnose(hist([1.0] * 30, acc, [1.0 - 0.02 * e for e in range(30)], acc))
    assert steady.val_loss_rise == 0 and steady.verdict == "none"  # a curve still falling has no rise


def test_clean_training_figures_decide_the_gap_when_recorded():
    from cnnkit.results.reading import History

    base = {"train_loss": [1.0] * 8, "train_accuracy": [0.5] * 8, "val_loss": [1.0] * 8, "val_accuracy": [0.7] * 8}
    running = an.diagnose(History.from_mapping(base))
    clean = an.diagnose(History.from_mapping({**base, "train_eval_loss": [0.5] * 8, "train_eval_accuracy": [0.9] * 8}))
    assert not running.clean and running.final_acc_gap == pytest.approx(-0.2)  # augmented batches: a negative gap
    assert clean.clean and clean.final_acc_gap == pytest.approx(0.2) and clean.verdict == "mild"


def test_verdict_thresholds_are_inclusive():
    assert an.overfitting_verdict(an.STRONG_VAL_LOSS_RISE, an.STRONG_ACC_GAP) == "strong"
    assert an.overfitting_verdict(an.STRONG_VAL_LOSS_RISE - 1e-9, an.STRONG_ACC_GAP) == "mild"
    assert an.overfitting_verdict(an.MILD_VAL_LOSS_RISE, 0.0) == "mild"
    assert an.overfitting_verdict(0.0, an.MILD_ACC_GAP) == "mild"
    assert an.overfitting_verdict(0.01, 0.01) == "none"


def test_seed_stats_match_hand_computation():
    s = an.seed_stats([0.90, 0.92, 0.94])
    assert s.n == 3 and s.mean == pytest.approx(0.92)
    assert s.std == pytest.approx(0.02)
    assert s.half_width == pytest.approx(4.3027 * 0.02 / math.sqrt(3), rel=1e-4)
    assert (s.low, s.high) == pytest.approx((0.92 - s.half_width, 0.92 + s.half_width))
    one = an.seed_stats([0.5])
    assert one.std is None and one.half_width is None and one.low is None


def test_t_critical_from_scipy():
    assert stats.t_critical(1) == pytest.approx(12.706, abs=1e-3)
    assert stats.t_critical(2.7) == pytest.approx(3.392, abs=1e-3)  # fractional df (Welch): between t(3) and t(2)
    assert stats.t_critical(45) == pytest.approx(2.0141, abs=1e-3)
    assert stats.t_critical(math.inf) == pytest.approx(1.960, abs=1e-3)


def test_welch_interval_hand_computed():
    a, b = [0.90, 0.92, 0.94], [0.80, 0.81, 0.82]
    va, vb = 0.02**2 / 3, 0.01**2 / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert df == pytest.approx(2.94, abs=0.01)
    half = stats.t_critical(df) * math.sqrt(va + vb)
    assert stats.welch_interval(a, b) == pytest.approx((0.11 - half, 0.11 + half))
    assert stats.welch_interval(a, [0.8]) is None
    assert stats.welch_interval([0.5, 0.5], [0.4, 0.4]) == pytest.approx((0.1, 0.1))  # no spread: the difference itself


def test_noise_level_difference_is_not_a_win():
    a = fake_group([0.90, 0.93, 0.96], "adam")
    b = fake_group([0.91, 0.92, 0.94], "adagrad")
    c = an.compare(a, b, "test_accuracy")
    assert c.status == "noise"
    assert c.interval[0] < 0 < c.interval[1] and abs(c.diff) <= c.half_width


def test_clear_and_single_seed_comparisons():
    clear = an.compare(fake_group([0.80, 0.81, 0.82], "sgd"), fake_group([0.90, 0.91, 0.92]), "test_accuracy")
    assert clear.status == "clear" and clear.ahead["optimizer"] == "adam" and clear.diff == pytest.approx(0.1)
    single = an.compare(fake_group([0.99]), fake_group([0.50], "sgd"), "test_accuracy")
    assert single.status == "single_seed" and single.half_width is None


def test_loss_comparison_prefers_lower():
    c = an.compare(fake_group([1.2], "adam", "test_loss"), fake_group([0.9], "sgd", "test_loss"), "test_loss")
    assert c.ahead["optimizer"] == "sgd" and c.diff == pytest.approx(-0.3)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> an.Study:
    return an.load_study(make_study(tmp_path_factory.mktemp("a") / "s", missing=["mnist-strided_cnn-adam-seed0"]))


def test_load_study_runs_and_missing(study):
    assert len(study.runs) == 6 and study.listed == 7
    assert [m.dir for m in study.missing] == ["mnist-strided_cnn-adam-seed0"]
    ref = next(r for r in study.runs if r.dir == "cifar10-pooling_cnn-adam-seed0").reference
    assert ref["test_loss"] == 2.8947


def test_cifar_optimizer_rankings(study):
    (acc,) = [rk for rk in an.rankings(study.groups, "optimizer", "test_accuracy") if rk.shared["dataset"] == "cifar10"]
    (loss,) = [rk for rk in an.rankings(study.groups, "optimizer", "test_loss") if rk.shared["dataset"] == "cifar10"]
    cifar = [r for r in study.runs if r["dataset"] == "cifar10"]
    by_acc = [r["optimizer"] for r in sorted(cifar, key=lambda r: -r["test_accuracy"])]
    by_loss = [r["optimizer"] for r in sorted(cifar, key=lambda r: r["test_loss"])]
    assert [g["optimizer"] for g in acc.groups] == by_acc == ["adam", "adagrad", "adadelta"]
    assert [g["optimizer"] for g in loss.groups] == by_loss
    assert all(step.status == "single_seed" for step in acc.steps) and acc.steps[0].status != "clear"


def test_architecture_ranking_exists_only_where_both_nets_ran(study):
    pairs = an.rankings(study.groups, "architecture", "test_accuracy")
    assert [rk.shared["optimizer"] for rk in pairs] == ["adadelta"]  # the Adam strided run is missing


def test_seed_groups(tmp_path):
    s = an.load_study(make_study(tmp_path / "s", runs=[("mnist", "pooling_cnn", "adam", 4, None)], seeds=3))
    (g,) = s.groups
    assert g.seeds == [0, 1, 2]
    vals = [r["test_accuracy"] for r in s.runs]
    st = g.stats("test_accuracy")
    assert st.mean == pytest.approx(np.mean(vals)) and st.std == pytest.approx(np.std(vals, ddof=1))


def test_confusion_and_per_class_accuracy():
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    acc = an.per_class_accuracy(cm)
    assert acc[:3].tolist() == [0.5, 1.0, 0.0] and math.isnan(acc[3])


def test_predictions_from_fixture(study):
    p = study.runs[0].predictions
    assert p.confusion.sum() == len(p.y_true)
    assert len(p.images) == len(p.images_true) <= 16


def test_strided_conv_does_a_quarter_of_the_multiply_adds(study):
    def conv2(arch):
        run = next(r for r in study.runs if r["architecture"] == arch and r["dataset"] == "mnist")
        return an.layer_macs(run.config["model"]["layers"][1])

    assert conv2("strided_cnn") * 4 == conv2("pooling_cnn")


def test_not_a_study_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a study"):
        an.load_study(tmp_path)


def test_corrupt_result_counts_as_an_unfinished_run(tmp_path):
    """A result.json cut short is no result: the report names the run as missing (issue 11), it does not fail."""
    root = make_study(tmp_path / "s", runs=[("mnist", "pooling_cnn", "adam", 3, None)])
    (root / "mnist-pooling_cnn-adam-seed0" / "result.json").write_text("{ truncated")
    study = an.load_study(root)
    assert study.runs == [] and [missing.dir for missing in study.missing] == ["mnist-pooling_cnn-adam-seed0"]
