"""Reports of studies whose configurations differ only in their network: the architecture is the factor, weighed
on accuracy against cost (parameters, multiply-adds, time per epoch), and each network gets its own layer table."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import make_study, run_dir
from test_report import prose

from cnnkit.report import analysis as an
from cnnkit.report.localize import Formatter
from cnnkit.report.render import render_report

PRESETS = ("pooling_cnn", "keras_cifar10", "vgg_bn_gap")
FLIP_CROP = {"augment": ("flip", "crop")}
WORDS = {
    "en": {
        "question": "which network does best, and at what cost",
        "better": "did better than",
        "times": "times",
        "ahead": "is ahead of",
    },
    "es": {
        "question": "qué red da mejor resultado y a qué coste",
        "better": "fue mejor que",
        "times": "veces",
        "ahead": "supera a",
    },
}


def model_record(architecture: str, arch: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.json's `model` for a registered network on CIFAR-10, as training writes it (exact counts)."""
    from cnnkit.nets.summary import summarize
    from cnnkit.plugins import get_registries
    from cnnkit.training.settings import run_config

    registries = get_registries()
    config = run_config("cifar10", architecture, arch=arch).checked(registries)
    model = registries.architectures.get(architecture)((3, 32, 32), 10, None, "keras", arch=config.arch)
    return summarize(model.network, (3, 32, 32)).as_dict()


def table_rows(html: str, cls: str) -> list[list[str]]:
    table = re.search(rf'<table class="{cls}">.*?</table>', html, re.S)
    assert table, cls
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.S)[1:]
    cell = lambda c: re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", c))).strip()  # noqa: E731
    return [[cell(c) for c in re.findall(r"<td.*?</td>", r, re.S)] for r in rows]


def vgg_ahead(root: Path) -> None:
    """Put vgg_bn_gap's runs 5 points ahead of the synthetic accuracies."""
    for result in root.glob("cifar10-vgg_bn_gap-*/result.json"):
        record = json.loads(result.read_text())
        result.write_text(json.dumps({**record, "test_accuracy": record["test_accuracy"] + 0.05}))


@pytest.fixture(scope="module")
def presets_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """net_1, the Keras example and the batch-normalized net, 2 seeds each; the last 5 points ahead."""
    runs = [("cifar10", a, "adam", 8, None, FLIP_CROP) for a in PRESETS]
    root = make_study(tmp_path_factory.mktemp("nets") / "cifar10-architectures", runs=runs, seeds=2,
                      name="cifar10-architectures", models={a: model_record(a) for a in PRESETS})  # fmt: skip
    vgg_ahead(root)
    return root


@pytest.mark.parametrize("lang", ["en", "es"])
def test_networks_are_compared_on_accuracy_and_cost(presets_study: Path, lang: str) -> None:
    html = render_report(presets_study, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    fmt, words = Formatter(lang), WORDS[lang]
    groups = an.load_study(presets_study).groups
    net_1, _, vgg = groups
    assert words["question"] in prose(html, "introduction")

    rows = table_rows(html, "networks")
    assert [r[1] for r in rows] == [fmt.int(2117962), fmt.int(1250858), fmt.int(289642)]  # parameters
    for row, group in zip(rows, groups, strict=True):
        macs = json.loads((group.runs[0].path / "config.json").read_text())["model"]["macs"]
        assert row[2] == fmt.int(macs) and row[3] == "2"  # multiply-adds per image, seeds
        s = group.stats("test_accuracy")
        assert re.sub(r"\s+", " ", f"{fmt.pct(s.mean)} ± {fmt.pp(s.half_width)}") == row[4]
        seconds = [t for r in group.runs for t in r.result["epoch_seconds"]]
        assert row[6].startswith(re.sub(r"\s+", " ", fmt.seconds(sum(seconds) / len(seconds), 2)))  # measured

    discussion = prose(html, "discussion")
    macs_ratio = vgg.runs[0].config["model"]["macs"] / net_1.runs[0].config["model"]["macs"]
    assert f"{fmt.num(macs_ratio, 2)} {words['times']}" in discussion  # accuracy weighed against cost
    assert words["better"] in discussion
    for section, verdict in (("abstract", "better"), ("conclusions", "ahead")):  # the best against the first
        said = prose(html, section)
        assert words[verdict] in said and "vgg_bn_gap" in said and "net_1" in said
    assert "Max-pooling versus strided" not in html and "Architectures compared" not in html  # said once, here


@pytest.mark.parametrize(
    "lang, caveat, time_words",
    [("en", "timed on different hardware or with different thread counts", "time per epoch"),
     ("es", "en hardware distinto o con un número distinto de hilos", "tiempo por época")],
)  # fmt: skip
def test_times_per_epoch_on_different_thread_counts_are_not_compared(
    tmp_path: Path, lang: str, caveat: str, time_words: str
) -> None:
    """The shipped cifar10-architectures: net_1's run had one thread, the others two. The table keeps each measured
    time, the text says why they do not compare, and no sentence gives a ratio of times."""
    runs = [("cifar10", a, "adam", 8, None, FLIP_CROP) for a in PRESETS]
    root = make_study(tmp_path / "nets", runs=runs, name="nets", models={a: model_record(a) for a in PRESETS})
    for result in root.glob("cifar10-pooling_cnn-*/result.json"):
        result.write_text(json.dumps({**json.loads(result.read_text()), "device": "CPU (1 thread)"}))
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    assert caveat in prose(html, "results")
    for section in ("abstract", "discussion", "conclusions"):
        assert time_words not in prose(html, section), section
    assert len(table_rows(html, "networks")[0]) == 7  # the measured times stay in the table

    same = make_study(tmp_path / "same", runs=runs, name="same", models={a: model_record(a) for a in PRESETS})
    html = render_report(same, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    assert caveat not in html and time_words in prose(html, "abstract")


@pytest.mark.parametrize(
    "lang, lone, wrong",
    [("en", "The pooling CNN (net_1) has a single seed", "one seed per configuration"),
     ("es", "La CNN con pooling (net_1) tiene una sola semilla", "una semilla por configuración")],
)  # fmt: skip
def test_a_verdict_against_a_single_seed_names_that_side(tmp_path: Path, lang: str, lone: str, wrong: str) -> None:
    """The shipped cifar10-architectures while it trained: vgg_bn_gap had 3 seeds, net_1 one. No difference is
    tested, and the text says which side has one seed, not that every configuration has."""
    runs = [("cifar10", a, "adam", 8, None, FLIP_CROP) for a in PRESETS]
    net_1_later = [run_dir("cifar10", "pooling_cnn", "adam", seed, FLIP_CROP) for seed in (1, 2)]
    root = make_study(tmp_path / "nets", runs=runs, seeds=3, missing=net_1_later, name="nets",
                      models={a: model_record(a) for a in PRESETS})  # fmt: skip
    vgg_ahead(root)
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    abstract = prose(html, "abstract")
    assert lone in abstract and wrong not in abstract
    assert WORDS[lang]["better"] not in abstract


def test_two_configs_of_one_architecture_are_two_networks(tmp_path: Path) -> None:
    plain = {"stages": [[8]], "head": [16]}
    batch = {"stages": [[8]], "head": [16], "norm": "batch"}
    runs = [("cifar10", "convnet", "adam", 4, None, {"arch": table}) for table in (plain, batch)]
    root = tmp_path / "arch-norm"
    make_study(root, runs=runs, name="arch-norm")
    dirs = json.loads((root / "study.json").read_text())["runs"]
    for entry, table in zip(dirs, (plain, batch), strict=True):  # the study.json entries keep their arch tables
        config_path = root / entry["dir"] / "config.json"
        config = json.loads(config_path.read_text())
        config_path.write_text(json.dumps({**config, "arch": table, "model": model_record("convnet", table)}))
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    captions = re.findall(r'<table class="layers">\s*<caption>(.*?)</caption>', html, re.S)
    assert len(captions) == 2 and 'norm = "batch"' in unescape(captions[1]) and "norm" not in captions[0]
    rows = table_rows(html, "networks")
    assert len(rows) == 2 and rows[0][1] != rows[1][1]  # batch norm's parameters: a second network, counted apart
    assert "BatchNormalization" in html or "BatchNorm" in html
