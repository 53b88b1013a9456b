"""The report on the page and on the screen: the shipped studies, rendered in both languages, keep every character of
the PDF inside the page (the running footer in its margin), print no text over other text and draw no table as an
image; in headless Chromium at 1280 and 390 px no table or figure runs out of the window except inside its own
scroll box, the contents link to every numbered heading, and a figure zooms on focus.

The PDF is read with PyMuPDF, which gives each character's box; the rendering tests are slow (each study takes
10-20 s per language).
"""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cnnkit.report.render import breakable_pm, render_report, svg_aspect, with_contents

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "examples" / "results"
STUDIES = ("assignment", "adadelta-lr", "cifar10-levers", "cifar10-tune", "cifar10-architectures")
LANGS = ("en", "es")
MM = 72 / 25.4  # PDF points per millimetre
MARGIN = {"top": 18 * MM, "right": 16 * MM, "bottom": 20 * MM, "left": 16 * MM}  # templates/report.css, @page
SLACK = 1.0  # pt: a glyph's box may pass its line's edge by this much


# ----------------------------------------------------------------------------------------------- the shipped studies
@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory):
    """render(study, lang) -> (report.html, report.pdf) of a copy of the shipped study, each rendered once."""
    done: dict[tuple[str, str], tuple[Path, Path]] = {}

    def render(study: str, lang: str) -> tuple[Path, Path]:
        if (study, lang) not in done:
            root = tmp_path_factory.mktemp(f"{study}-{lang}") / study
            shutil.copytree(SHIPPED / study, root, ignore=shutil.ignore_patterns("report"))
            html, pdf = render_report(root, lang=lang)
            done[study, lang] = (html, pdf)
        return done[study, lang]

    return render


def text_lines(page) -> list[dict]:
    """The page's lines of text, each with the box of its visible characters, its direction and its text; text
    drawn past the page's edge included (PyMuPDF clips to the page unless told not to)."""
    fitz = pytest.importorskip("pymupdf")
    flags = fitz.TEXTFLAGS_RAWDICT & ~fitz.TEXT_MEDIABOX_CLIP
    lines = []
    for block in page.get_text("rawdict", flags=flags)["blocks"]:
        for line in block.get("lines", []):
            chars = [c for span in line["spans"] for c in span["chars"] if c["c"].strip()]
            if chars:
                box = tuple(f(c["bbox"][k] for c in chars) for k, f in enumerate((min, min, max, max)))
                text = "".join(c["c"] for span in line["spans"] for c in span["chars"])
                lines.append({"box": box, "dir": line["dir"], "text": text.strip()})
    return lines


def off_the_page(page, lines: list[dict]) -> list[str]:
    """Lines outside the page, or in its left or right margin: only the running header and footer may use the
    margins, and they sit above and below the text area."""
    width, height = page.rect.width, page.rect.height
    out = []
    for line in lines:
        x0, y0, x1, y1 = line["box"]
        middle = (y0 + y1) / 2
        outside = x0 < -SLACK or y0 < -SLACK or x1 > width + SLACK or y1 > height + SLACK
        in_text_area = MARGIN["top"] < middle < height - MARGIN["bottom"]
        in_side_margin = x0 < MARGIN["left"] - SLACK or x1 > width - MARGIN["right"] + SLACK
        if outside or (in_text_area and in_side_margin):
            out.append(f"{line['text'][:50]!r} at x {x0:.0f}-{x1:.0f}, y {y0:.0f}")
    return out


def over_each_other(lines: list[dict]) -> list[str]:
    """Pairs of horizontal lines whose character boxes overlap by more than SLACK across and a third of the lower
    line's height (rotated tick labels are left out: their boxes are not their glyphs)."""
    flat = sorted((ln for ln in lines if abs(ln["dir"][0] - 1) < 1e-3), key=lambda ln: ln["box"][1])
    out = []
    for i, a in enumerate(flat):
        for b in flat[i + 1 :]:
            if b["box"][1] >= a["box"][3]:
                break
            across = min(a["box"][2], b["box"][2]) - max(a["box"][0], b["box"][0])
            down = min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1])
            lower = min(a["box"][3] - a["box"][1], b["box"][3] - b["box"][1])
            if across > SLACK and down > lower / 3:
                out.append(f"{a['text'][:40]!r} over {b['text'][:40]!r}")
    return out


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", htmllib.unescape(text))


def table_cells(html: str) -> list[tuple[int, str]]:
    """(table number, text) of every header and data cell of the report's tables, as a reader reads them."""
    cells = []
    for n, table in enumerate(re.findall(r"<table.*?</table>", html, re.S), 1):
        for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", table, re.S):
            text = re.sub(r"<[^>]+>", " ", cell)
            if squeeze(text):
                cells.append((n, text))
    return cells


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("study", STUDIES)
def test_pdf_pages_hold_their_text(shipped, study, lang):
    html_path, pdf_path = shipped(study, lang)
    assert_pages_hold_their_text(html_path, pdf_path, lang)


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_a_comparison_of_networks_holds_its_pages(tmp_path, lang):
    """The networks table (seven columns, long network names) and the layer tables of three networks."""
    from report_fixtures import make_study
    from test_report_networks import FLIP_CROP, PRESETS, model_record

    runs = [("cifar10", a, "adam", 8, None, FLIP_CROP) for a in PRESETS]
    root = make_study(tmp_path / "nets", runs=runs, seeds=2, name="nets", models={a: model_record(a) for a in PRESETS})
    html_path, pdf_path = render_report(root, lang=lang)
    assert '<table class="networks">' in html_path.read_text(encoding="utf-8")
    assert_pages_hold_their_text(html_path, pdf_path, lang)


def assert_pages_hold_their_text(html_path: Path, pdf_path: Path, lang: str) -> None:
    fitz = pytest.importorskip("pymupdf")
    html = html_path.read_text(encoding="utf-8")
    problems = []
    text = []
    with fitz.open(pdf_path) as doc:
        for number, page in enumerate(doc, 1):
            lines = text_lines(page)
            problems += [f"page {number}: off the page: {p}" for p in off_the_page(page, lines)]
            problems += [f"page {number}: overprinted: {p}" for p in over_each_other(lines)]
            text.append(page.get_text())
    assert problems == [], "\n".join(problems)

    # every table is text, numbered: each cell's words are in the PDF's text, in the order the table gives them,
    # and the PDF numbers as many tables as the HTML holds, each with a caption
    pdf_text = squeeze("".join(text))
    tables = re.findall(r"<table.*?</table>", html, re.S)
    assert tables and all("<caption>" in t for t in tables)
    word = {"en": "Table", "es": "Tabla"}[lang]
    assert [n for n in range(1, len(tables) + 1) if f"{word}{n}." not in pdf_text] == []
    assert f"{word}{len(tables) + 1}." not in pdf_text
    missing = [(n, squeeze(cell)) for n, cell in table_cells(html) if squeeze(cell) not in pdf_text]
    assert missing == []


# ----------------------------------------------------------------------------------------------- the web page
LAYOUT_CHECK = Path(__file__).with_name("layout_check.js")


def chromium_layout(html: str, width: int, tmp_path: Path) -> dict:
    """What tests/layout_check.js measures of `html` shown `width` CSS px wide in headless Chromium.

    The report goes into an iframe of that width (a headless window cannot be made narrower than about 500 px)
    through srcdoc, so that the script inside may write its findings into the page that --dump-dom prints."""
    inner = html.replace("</body>", f"<script>{LAYOUT_CHECK.read_text(encoding='utf-8')}</script></body>")
    page = tmp_path / f"layout-{width}.html"
    page.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe style="border:0;width:{width}px;height:900px" srcdoc="{htmllib.escape(inner, quote=True)}"></iframe>'
        "</body></html>",
        encoding="utf-8",
    )
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000", "--virtual-time-budget=5000",
           "--dump-dom", page.resolve().as_uri()]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found, f"the layout check wrote nothing: {dom[-500:]}"
    return json.loads(htmllib.unescape(found.group(1)))


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("study", STUDIES)
def test_html_fits_the_window_in_chromium(shipped, study, width, tmp_path):
    html_path, _ = shipped(study, "en")
    found = chromium_layout(html_path.read_text(encoding="utf-8"), width, tmp_path)
    assert found["width"] <= width
    assert found["overflow"] == [] and found["scrollWidth"] <= found["width"]
    toc = found["toc"]
    assert toc["visible"] and toc["links"] == toc["headings"] > 5 and toc["missing"] == []
    zoom = found["zoom"]
    (w0, h0), (w1, h1), (w2, h2), (vw, vh) = zoom["before"], zoom["zoomed"], zoom["after"], zoom["window"]
    assert zoom["focused"] and (w1 >= 0.9 * vw or h1 >= 0.9 * vh) and w1 * h1 > 1.5 * w0 * h0
    assert (w2, h2) == (w0, h0) and zoom["flow"][0] == zoom["flow"][1]  # closed again; the page did not move


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_html_in_spanish_fits_a_phone(shipped, tmp_path):
    html_path, _ = shipped("cifar10-levers", "es")
    found = chromium_layout(html_path.read_text(encoding="utf-8"), 390, tmp_path)
    assert found["overflow"] == [] and found["scrollWidth"] <= found["width"]


# ----------------------------------------------------------------------------------------------- the pieces
def test_contents_link_every_numbered_heading():
    html = (
        '<h2 class="unnumbered">Abstract</h2><!-- contents --><h2>Methods</h2><h3>Data</h3><h3 id="own">Nets</h3>'
        "<h2>Results</h2><h3>Curves</h3>"
    )
    out = with_contents(html, "Contents")
    assert out.count("<nav") == 1 and out.index("<nav") > out.index("Abstract") and "<!-- contents -->" not in out
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', out)
    assert links == [("sec-1", "Methods"), ("sec-1-1", "Data"), ("own", "Nets"), ("sec-2", "Results"),
                     ("sec-2-1", "Curves")]  # fmt: skip
    for ident, _ in links:
        assert out.count(f'id="{ident}"') == 1
    assert with_contents("<h2>x</h2>", "Contents") == "<h2>x</h2>"  # no mark: nothing added


def test_mean_and_half_width_break_before_the_plus_minus():
    said = breakable_pm("85.97% ± 2.25\xa0pp")
    assert said == '<span class="part">85.97%</span> <span class="part">± 2.25\xa0pp</span>'
    assert re.sub(r"<[^>]+>", "", said) == "85.97% ± 2.25\xa0pp"  # the text is unchanged
    assert breakable_pm("<b> 0.5") == "&lt;b&gt; 0.5"
    assert svg_aspect('<svg role="img" viewBox="0 0 504.1 180.5">') == "504.1 / 180.5"
    assert svg_aspect("<svg>") == "auto"


def test_budget_said_once(tmp_path):
    """One published budget: in the caption, no Budget column; several: one cell for each run of rows sharing one."""
    from report_fixtures import ASSIGNMENT_RUNS, make_study

    from cnnkit.report.catalog import load_text

    words = load_text("en")
    html = render_report(make_study(tmp_path / "assignment"), formats=["html"])[0].read_text(encoding="utf-8")
    table = re.search(r'<table class="results">.*?</table>', html, re.S).group(0)
    rows = re.findall(r"<tr><td class=\"label\">.*?</tr>", table, re.S)
    per_row: list[str | None] = []  # each row's budget, expanded over the rows its cell spans ("—": none)
    for row in rows:
        cell = re.search(r'<td class="budget"(?: rowspan="(\d+)")?>([^<]+)</td>|<td>(—)</td>', row)
        if cell:
            per_row += [cell.group(2) or cell.group(3)] * int(cell.group(1) or 1)
            said = per_row[-1]
            before = per_row[-int(cell.group(1) or 1) - 1] if len(per_row) > int(cell.group(1) or 1) else None
            assert said == "—" or said != before  # a budget is said once for a run of rows that share it
    assert len(per_row) == len(rows) == len(ASSIGNMENT_RUNS)
    assert per_row.count("—") == sum(1 for run in ASSIGNMENT_RUNS if not run[4])
    assert table.count('rowspan="') >= 1 and f"<th>{words['cols']['budget']}</th>" in table

    mnist = [run for run in ASSIGNMENT_RUNS if run[0] == "mnist"]
    one = render_report(make_study(tmp_path / "mnist", runs=mnist), formats=["html"])[0].read_text(encoding="utf-8")
    table = re.search(r'<table class="results">.*?</table>', one, re.S).group(0)
    assert '<td class="budget"' not in table and f"<th>{words['cols']['budget']}</th>" not in table
    caption = re.search(r"<caption>(.*?)</caption>", table, re.S).group(1)
    assert words["layout"]["published_budget"].split("{")[0] in caption
