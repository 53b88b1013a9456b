"""Report render time and page count: the assignment with 5 seeds (35 runs) against its 7 single-seed runs.

A report grows with the study's questions, not with its seeds: the 35-run report should render in at most 1.6x the
time of the 7-run one and stay within a few pages of it. Both studies are synthetic (tests/report_fixtures.py: the
assignment's seven configurations, realistic curves and predictions), so no training is needed.

Each render runs in a fresh Python process (figures are memoised in-process, so a second render in one process
would be free), with the imports done before the clock starts: timed is `render_report(STUDY)`, HTML and PDF, as
`cnnkit report STUDY` does it. The two sides alternate, `--repeats` times; medians and ranges are printed.

    python benchmarks/report_scale.py              # 3 repeats, English
    python benchmarks/report_scale.py --repeats 5 --lang es
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import sys, time
from pathlib import Path
from cnnkit.report.render import render_report
import matplotlib.figure, weasyprint  # noqa: F401  (imported before the clock starts)
from cnnkit.plugins import get_registries
registries = get_registries()
started = time.perf_counter()
render_report(Path(sys.argv[1]), lang=sys.argv[2], registries=registries)
print(time.perf_counter() - started)
"""


def make_studies(root: Path) -> dict[str, Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from report_fixtures import make_study

    return {
        "7 runs (1 seed)": make_study(root / "one-seed", seeds=1),
        "35 runs (5 seeds)": make_study(root / "five-seeds", seeds=5),
    }


def render_seconds(study: Path, lang: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(study), lang], capture_output=True, text=True, check=True, cwd=REPO
    )
    return float(done.stdout.strip().splitlines()[-1])


def pages(study: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(study / "report" / "report.pdf").pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        studies = make_studies(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in studies}
        for i in range(args.repeats):
            order = list(studies) if i % 2 == 0 else list(reversed(studies))
            for name in order:
                times[name].append(render_seconds(studies[name], args.lang))
        print(f"{'study':<20} {'render s (median, range)':>28} {'PDF pages':>10}")
        for name, study in studies.items():
            t = times[name]
            print(f"{name:<20} {statistics.median(t):>12.2f} ({min(t):.2f}-{max(t):.2f}) {pages(study):>10}")
        small, large = (statistics.median(times[name]) for name in studies)
        print(f"time ratio 35/7: {large / small:.2f} (limit 1.6)")


if __name__ == "__main__":
    main()
