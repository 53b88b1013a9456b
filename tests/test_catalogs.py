"""The report's words live in gettext catalogs: what Babel extracts from the code and the templates is exactly what
each language's .po translates, so a translator edits one file and no word stays English."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from cnnkit.report.catalog import languages, load_text

REPO = Path(__file__).resolve().parent.parent
I18N = REPO / "templates" / "i18n"


def messages(catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set[tuple[str | None, str]]:
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    cmd = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(I18N / "babel.cfg"),
           "-k", "N_:1c,2", "--no-location", "-o", str(pot), "."]  # fmt: skip
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return messages(read_po(io.StringIO(pot.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_catalog_translates_every_extracted_message_and_nothing_else(extracted, lang):
    catalog = read_po(io.StringIO((I18N / f"{lang}.po").read_text(encoding="utf-8")), locale=lang)
    assert extracted - messages(catalog) == set()  # a word without a translation
    assert messages(catalog) - extracted == set()  # a stale translation
    untranslated = [m.id for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    assert untranslated == []


def test_committed_template_is_current(extracted):
    pot = read_po(io.StringIO((I18N / "messages.pot").read_text(encoding="utf-8")))
    assert messages(pot) == extracted


def test_spanish_words_and_class_names():
    from cnnkit.plugins import create_plugin_manager

    es = load_text("es")
    cifar10 = create_plugin_manager()[1].datasets.entry("cifar10").reader  # the dataset's plugin names its classes
    assert es["sections"]["abstract"] == "Resumen" and cifar10.classes_in("es", ["x"] * 10)[0] == "avión"
    assert cifar10.classes_in("en", ["x"] * 10) is None  # English: the names as the data files give them
    assert "Keras" in es["init"]["glorot-uniform kernels, zero biases (Keras defaults)"]
    assert languages() == ["en", "es"]


def test_spanish_report_has_no_english_class_names_or_init(tmp_path):
    from report_fixtures import ASSIGNMENT_RUNS, make_study

    from cnnkit.report.render import render_report

    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[4:5])  # CIFAR-10
    html = render_report(root, formats=["html"], lang="es")[0].read_text(encoding="utf-8")
    body = html.split("</head>")[1].split('<section id="appendix">')[0]  # the appendix quotes config.json as it is
    assert "avión" in body and "camión" in body
    for english in ("airplane", "automobile", "truck", "zero biases"):
        assert english not in body


def glossary(lang: str) -> list[tuple[str, str]]:
    """The catalog's glossary: `#   english = spanish` lines of its header comment."""
    head = (I18N / f"{lang}.po").read_text(encoding="utf-8").split('msgid ""', 1)[0]
    found = re.findall(r"^#\s{3}(.+?) = (.+?)(?:\s{2,}\(.*\))?$", head, re.M)
    return [(en.strip(), es.strip()) for en, es in found]


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_one_term_per_concept_as_the_glossary_says(lang):
    """Every message that uses a glossary term says it in the glossary's words, in every section."""
    terms = glossary(lang)
    assert len(terms) >= 8
    catalog = read_po(io.StringIO((I18N / f"{lang}.po").read_text(encoding="utf-8")), locale=lang)
    wrong = []
    for message in catalog:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not ids[0]:
            continue
        said = re.sub(r"\{\w+\}|%\(\w+\)s", "", ids[-1])  # placeholders ({seeds}) are not words
        for en, es in terms:
            # a plural or an inflected form counts: "trials" as "trial", "ensayos" / "características" as the term
            if re.search(rf"\b{re.escape(en)}s?\b", said, re.I) and not re.search(
                re.escape(es[:-1]), strings[-1], re.I
            ):
                wrong.append(f"{message.context or ''}: {en!r} without {es!r}: {strings[-1][:80]}")
    assert wrong == []
