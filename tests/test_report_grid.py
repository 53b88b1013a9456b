"""A grid crossing two settings is read factor by factor: each factor's main effect (its mean over the other
factor's values) with Welch–Satterthwaite's interval when there are seeds, in the Discussion and the Conclusions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_study
from test_report import prose

from cnnkit.report import analysis as an
from cnnkit.report import factors as fc
from cnnkit.report.localize import Formatter
from cnnkit.report.render import render_report
from cnnkit.results.stats import contrast_interval, welch_interval

RUNS = [
    ("mnist", "strided_cnn", "adam", 5, None, {"lr": lr, **({"augment": ("crop",)} if crop else {})})
    for lr in (0.001, 0.01)
    for crop in (False, True)
]
WORDS = {
    "en": {"lr": "learning rate", "augment": "data augmentation", "apart": "cannot be told apart",
           "better": "did better than", "untested": "no difference was tested"},
    "es": {"lr": "tasa de aprendizaje", "augment": "aumento de datos", "apart": "no se pueden distinguir",
           "better": "fue mejor que", "untested": "no se contrastó ninguna diferencia"},
}  # fmt: skip


def test_a_main_effect_of_one_cell_is_welchs_interval() -> None:
    a, b = [0.91, 0.93, 0.92, 0.95], [0.88, 0.90, 0.91]
    assert contrast_interval([(a, b)]) == pytest.approx(welch_interval(a, b))


def test_a_main_effect_averages_the_cells_and_widens_with_their_spread() -> None:
    quiet = [([0.90, 0.91, 0.92], [0.85, 0.86, 0.87]), ([0.80, 0.81, 0.82], [0.79, 0.80, 0.81])]
    low, high = contrast_interval(quiet)
    assert (low + high) / 2 == pytest.approx((0.05 + 0.01) / 2)  # the mean of the cells' differences
    noisy = [(list(np.add(a, [0, 0.03, -0.03])), b) for a, b in quiet]
    assert contrast_interval(noisy)[1] - contrast_interval(noisy)[0] > high - low
    assert contrast_interval([([0.9], [0.8, 0.81])]) is None  # a cell with one seed: nothing to test


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_two_factor_grid_is_discussed_factor_by_factor(tmp_path: Path, lang: str) -> None:
    root = make_study(tmp_path / "grid", runs=RUNS, seeds=3, name="grid")
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    fmt, words = Formatter(lang), WORDS[lang]
    groups = an.load_study(root).groups
    grid = fc.crossed_grid(groups)
    assert grid is not None and grid.keys == ["lr", "augment"]
    discussion, conclusions = prose(html, "discussion"), prose(html, "conclusions")
    for effect in grid.effects:
        at_value = {
            v: np.mean([g.stats("test_accuracy").mean for g in groups if fc.factor_value(g, effect.key) == v])
            for v in effect.values
        }
        for said in (discussion, conclusions):
            assert words[effect.key] in said
            for mean in at_value.values():  # each value's mean over the other factor's values
                assert re.sub(r"\s+", " ", fmt.pct(mean)) in said
        verdict = words["better"] if effect.status == "clear" else words["apart"]
        assert effect.status in ("clear", "noise") and verdict in discussion and verdict in conclusions
    augment = grid.effects[1]
    assert augment.best == ("crop",) and augment.status == "clear"  # the fixtures' crop lifts accuracy by a point
    assert words["lr"] in prose(html, "introduction") and words["augment"] in prose(html, "abstract")


def test_one_seed_per_cell_tests_nothing(tmp_path: Path) -> None:
    root = make_study(tmp_path / "grid", runs=RUNS, seeds=1, name="grid")
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    conclusions = prose(html, "conclusions")
    assert conclusions.count(WORDS["en"]["untested"]) >= 2 and WORDS["en"]["better"] not in conclusions
