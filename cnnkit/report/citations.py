"""The References list: the works the report's own text cites, plus the citations plugins give their entries."""

from __future__ import annotations

import re
from collections.abc import Iterable

from markupsafe import Markup, escape

# (what makes the report cite it, the reference). Conditions are names of things present in the study,
# or "always" for the introduction's citation.
BUILTIN: tuple[tuple[str, str], ...] = (
    ("adagrad", "Duchi, J., Hazan, E. &amp; Singer, Y. (2011). Adaptive subgradient methods for online learning and "
                "stochastic optimization. <em>Journal of Machine Learning Research</em>, 12, 2121–2159."),
    ("keras", "Glorot, X. &amp; Bengio, Y. (2010). Understanding the difficulty of training deep feedforward neural "
              "networks. <em>Proceedings of AISTATS</em>, 249–256."),
    ("adam", "Kingma, D. P. &amp; Ba, J. (2015). Adam: A method for stochastic optimization. <em>International "
             "Conference on Learning Representations (ICLR)</em>. arXiv:1412.6980."),
    ("cifar10", "Krizhevsky, A. (2009). <em>Learning multiple layers of features from tiny images</em>. Technical "
                "report, University of Toronto."),
    ("always", "LeCun, Y., Bottou, L., Bengio, Y. &amp; Haffner, P. (1998). Gradient-based learning applied to "
               "document recognition. <em>Proceedings of the IEEE</em>, 86(11), 2278–2324."),
    ("pool_vs_stride", "Springenberg, J. T., Dosovitskiy, A., Brox, T. &amp; Riedmiller, M. (2015). Striving for "
                       "simplicity: The all convolutional net. <em>ICLR workshop track</em>. arXiv:1412.6806."),
    ("adadelta", "Zeiler, M. D. (2012). ADADELTA: An adaptive learning rate method. arXiv:1212.5701."),
)  # fmt: skip


def _key(text: str) -> tuple[str, str]:
    """(first author's surname, year): two texts of the same work give the same key."""
    plain = re.sub(r"<[^>]+>", "", text)
    year = re.search(r"\((\d{4})\)", plain)
    return plain.split(",")[0].strip().lower(), year.group(1) if year else plain


def references(present: Iterable[str], plugin_citations: Iterable[str]) -> list[Markup]:
    """The reference list, alphabetical; a plugin's citation of a work already listed is not repeated."""
    present = {"always", *present}
    chosen = {_key(text): Markup(text) for cond, text in BUILTIN if cond in present}
    for citation in plugin_citations:
        if citation:
            chosen.setdefault(_key(citation), escape(citation))
    return sorted(chosen.values(), key=lambda m: re.sub(r"<[^>]+>", "", str(m)).lower())
