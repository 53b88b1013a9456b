"""The report's locale: numbers, percentages and dates by Babel (CLDR), plurals by gettext catalogs.

Every word is a gettext message with its English text as msgid: the report's words in templates/words.toml (each
with its key path as msgctxt, see cnnkit.report.catalog) and the sentences of the templates (counted ones chosen
with `ngettext` under the language's CLDR plural rule). templates/i18n/<lang>.po translates them all.
"""

from __future__ import annotations

import builtins
import copy
import functools
import gettext
import io
import re
from datetime import datetime
from functools import cached_property
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal
from markupsafe import Markup

# A setting named by its lower-case abbreviation and value ("lr 0.1") starts a sentence as it is.
SETTING_ABBREVIATION = re.compile(r"lr [\d.,]")  # the one setting the report abbreviates ("lr 0.1")


class Formatter:
    """Number, percentage and date formatting for one report language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)

    def _percent(self, fewest: int) -> Any:
        pattern = copy.copy(self.locale.percent_formats[None])
        pattern.frac_prec = (fewest, 2)  # the locale's percent pattern (sign, spacing), up to two decimals
        return pattern

    @cached_property
    def _measured_percent(self) -> Any:
        return self._percent(2)

    @cached_property
    def _set_percent(self) -> Any:
        return self._percent(0)

    @property
    def list_separator(self) -> str:
        """Between the numbers of a list: a semicolon where the decimal mark is a comma (0,9; 0,999)."""
        return "; " if self.locale.number_symbols["latn"]["decimal"] == "," else ", "

    def int(self, x: float) -> str:
        """An integer with the locale's grouping: 1,625,866 (en), 1.625.866 (es)."""
        return format_decimal(int(x), locale=self.locale)

    # `int` in this class's annotations would name the method above: builtins.int is the type.
    def num(self, x: float, decimals: builtins.int = 2, signed: bool = False) -> str:
        """A decimal number with a fixed number of decimals (with its sign, + too, when `signed`)."""
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        if signed:
            pattern = f"+{pattern};-{pattern}"
        return format_decimal(x, format=pattern, locale=self.locale)

    def pct(self, x: float) -> str:
        """A measured fraction in [0,1] as a percentage with two decimals: 80.65% (en), 80,65 % (es)."""
        return self._measured_percent.apply(x, self.locale)

    def rel(self, x: float) -> str:
        """A relative change with the precision it has: 2.3% below 10%, whole percent above (45%, 233%)."""
        pattern = copy.copy(self.locale.percent_formats[None])
        decimals = 1 if abs(x) < 0.1 else 0
        pattern.frac_prec = (decimals, decimals)
        return pattern.apply(x, self.locale)

    def pp(self, x: float) -> str:
        """A difference of two accuracies in percentage points."""
        return f"{self.num(100 * x)}\xa0pp"

    def set_pct(self, x: float) -> str:
        """A chosen fraction (a split, a threshold) with only the decimals it has: 20% and 2.5% rather than 20.00%."""
        return self._set_percent.apply(x, self.locale)

    def set_pp(self, x: float) -> str:
        """A chosen threshold in percentage points, with only the decimals it has: 5 pp."""
        return f"{format_decimal(round(100 * x, 2), format='#,##0.##', locale=self.locale)}\xa0pp"

    def loss(self, x: float) -> str:
        return self.num(x, 4)

    def value(self, x: float) -> str:
        """A hyperparameter: a whole number as it is, else three significant digits (a searched 0.0011006 is 0.0011,
        not 0.001), scientific below 1e-3 (1e-07)."""
        if isinstance(x, builtins.int):
            return format_decimal(x, locale=self.locale)
        if x != 0 and abs(x) < 1e-3:
            short = f"{x:.3g}"  # 1e-07 stays scientific; 0.0005 takes the locale's decimal mark
            return short if "e" in short else format_decimal(float(short), format="0.######", locale=self.locale)
        return format_decimal(float(f"{x:.3g}"), format="#,##0.######", locale=self.locale)

    def seconds(self, x: float, decimals: builtins.int = 1) -> str:
        return f"{self.num(x, decimals)}\xa0s"

    def date(self, d: datetime) -> str:
        return format_date(d, "long", locale=self.locale)


@functools.lru_cache(maxsize=8)
def translations(lang: str, package: str) -> gettext.NullTranslations:
    """The gettext catalog of `lang` (i18n/<lang>.po compiled in memory); English uses the msgids themselves."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    po = resources.files(package) / "i18n" / f"{lang}.po"
    if not po.is_file():
        return gettext.NullTranslations()
    catalog = read_po(io.StringIO(po.read_text(encoding="utf-8")), locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def capfirst(text: str) -> str:
    """Sentence case: the first letter upper case, the rest as written; an identifier (net_1) is left as it is."""
    plain = str(text)
    if "_" in plain.split(" ", 1)[0] or SETTING_ABBREVIATION.match(plain):  # fashion_mnist, lr 0.1 keep their spelling
        return text
    out = plain[:1].upper() + plain[1:]
    return Markup(out) if isinstance(text, Markup) else out
