"""The References list: the works the report's own text cites, plus the citations plugins give their entries."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from markupsafe import Markup, escape

# The works the report's own text cites: (what makes it cite them, the reference). A condition is "always" (the
# introduction), "keras" (the keras preset's initialisation) or "pool_vs_stride" (the introduction's paragraph on
# downsampling). Everything a plugin registers cites itself through its ReaderInfo.
OWN: tuple[tuple[str, str], ...] = (
    ("keras", "Glorot, X. &amp; Bengio, Y. (2010). Understanding the difficulty of training deep feedforward neural "
              "networks. <em>Proceedings of AISTATS</em>, 249–256."),
    ("always", "LeCun, Y., Bottou, L., Bengio, Y. &amp; Haffner, P. (1998). Gradient-based learning applied to "
               "document recognition. <em>Proceedings of the IEEE</em>, 86(11), 2278–2324."),
    ("pool_vs_stride", "Springenberg, J. T., Dosovitskiy, A., Brox, T. &amp; Riedmiller, M. (2015). Striving for "
                       "simplicity: The all convolutional net. <em>ICLR workshop track</em>. arXiv:1412.6806."),
)  # fmt: skip
EMPHASIS = re.compile(r"\*([^*]+)\*")


def plugin_markup(citation: str) -> Markup:
    """A plugin's citation as HTML: escaped, with `*text*` set in italics (a journal or book title)."""
    return Markup(EMPHASIS.sub(r"<em>\1</em>", str(escape(citation))))


def _plain(text: str) -> str:
    """The words of a reference without markup: two texts of the same work, however marked up, are equal."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split())


def references(present: Iterable[str], plugin_citations: Iterable[str]) -> list[Markup]:
    """The reference list, alphabetical; a work both the text and a plugin cite is listed once."""
    present = {"always", *present}
    chosen = {_plain(text): Markup(text) for cond, text in OWN if cond in present}
    for citation in plugin_citations:
        if citation:
            marked = plugin_markup(citation)
            chosen.setdefault(_plain(marked), marked)
    return sorted(chosen.values(), key=lambda m: _plain(m).lower())
