"""A report dates its runs by when they finished, as result.json records it, never by the files' modification
times (a clone or a copy makes those the day of the copy)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from report_fixtures import ASSIGNMENT_RUNS, make_study

from cnnkit.report.render import render_report


def generated_line(root: Path, lang: str = "en") -> str:
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    return html.split('<p class="generated">', 1)[1].split("</p>", 1)[0]


SPAN = ["2026-11-28T09:15:00Z", "2026-12-02T23:59:59Z"]


@pytest.mark.parametrize(
    ("stamps", "lang", "said"),
    [
        (SPAN, "en", "runs finished from November 28, 2026 to December 2, 2026"),
        (["2026-12-02T08:00:00Z", "2026-12-02T18:00:00Z"], "en", "runs finished on December 2, 2026"),
        (SPAN, "es", "terminadas entre el 28 de noviembre de 2026 y el 2 de diciembre de 2026"),
    ],
)
def test_the_report_gives_the_days_its_runs_finished(tmp_path: Path, stamps: list[str], lang: str, said: str) -> None:
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:2])
    for result, stamp in zip(sorted(root.glob("*/result.json")), stamps, strict=True):
        result.write_text(json.dumps({**json.loads(result.read_text()), "finished": stamp}))
        os.utime(result, (0, 0))  # 1970: a file time that must not show
    line = generated_line(root, lang)
    assert said in line and "1970" not in line


def test_runs_without_a_recorded_finish_are_not_dated_by_their_files(tmp_path: Path) -> None:
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:1])
    line = generated_line(root)
    assert "finished" not in line and "dated" not in line and "20" not in line.split(root.name, 1)[1]
