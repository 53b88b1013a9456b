"""The report's words: templates/words.toml, in English, translated through the gettext catalogs.

Every string of words.toml is a gettext message whose context is its key path (`meta.title`, `levers.dropout`),
generated here and by the Babel extractor below, never written by hand: one word can read differently in two
places. A table with exactly the keys `one` and `other` is a sentence whose wording depends on a count (ngettext
under the language's CLDR plural rule). Regenerate the catalog template after changing a word:

    pybabel extract -F templates/i18n/babel.cfg -k N_:1c,2 -c TRANSLATORS: --no-location --sort-output \\
        --project cnnkit -o templates/i18n/messages.pot .

then add or change the entries of templates/i18n/<lang>.po (a third language is one more catalog:
`pybabel init -i templates/i18n/messages.pot -l LANG -o templates/i18n/LANG.po`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import IO, Any

import tomllib

from cnnkit.errors import UsageError
from cnnkit.report.localize import translations

TEMPLATES = "cnnkit_templates"
WORDS_FILE = "words.toml"
COMMENT = re.compile(r"^\s*#\s*(TRANSLATORS:.*)$")
KEY = re.compile(r"^\s*(\"[^\"]+\"|[A-Za-z0-9_-]+)\s*=")


@dataclass(frozen=True)
class Plural:
    """A sentence in the forms of one language's plural rule, chosen by a count."""

    context: str
    one: str
    other: str
    tr: Any

    def choose(self, n: int) -> str:
        return str(self.tr.npgettext(self.context, self.one, self.other, n))


def _is_plural(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"one", "other"}


def messages(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(context, message) for every word of the table: a message is a str or a (one, other) pair."""
    if _is_plural(node):
        yield path, (node["one"], node["other"])
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from messages(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from messages(value, f"{path}.{i}")
    elif isinstance(node, str):
        yield path, node


def english() -> dict[str, Any]:
    """words.toml as it is written (English)."""
    with (resources.files(TEMPLATES) / WORDS_FILE).open("rb") as f:
        return tomllib.load(f)


def languages() -> list[str]:
    """Report languages available: English (the messages themselves) and one gettext catalog per language."""
    folder = resources.files(TEMPLATES) / "i18n"
    return sorted({"en", *(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".po"))})


def load_text(lang: str) -> dict[str, Any]:
    """Every word of the report in one language: words.toml's tree, each message translated under its path."""
    valid = languages()
    if lang not in valid:
        raise UsageError(f"unknown report language {lang!r}; valid: {', '.join(valid)}")
    tr = translations(lang, TEMPLATES)

    def resolve(node: Any, path: str) -> Any:
        if _is_plural(node):
            return Plural(path, node["one"], node["other"], tr)
        if isinstance(node, dict):
            return {k: resolve(v, f"{path}.{k}" if path else k) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, f"{path}.{i}") for i, v in enumerate(node)]
        return tr.pgettext(path, node)

    return resolve(english(), "")


def extract_words(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, Any, list[str]]]:
    """Babel extractor for words.toml: each message under its key path as context, with the `# TRANSLATORS:`
    comment written above its key."""
    raw = fileobj.read()
    lines = raw.decode("utf-8").splitlines()
    comments: dict[str, list[str]] = {}
    pending: list[str] = []
    section = ""
    for line in lines:
        found = COMMENT.match(line)
        if found:
            pending.append(found.group(1))
            continue
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1).strip()
        key = KEY.match(line)
        if key and pending:
            name = key.group(1).strip('"')
            comments[f"{section}.{name}" if section else name] = pending
        if line.strip():
            pending = []
    for lineno, (context, message) in enumerate(messages(tomllib.loads(raw.decode("utf-8"))), start=1):
        notes = next((c for prefix, c in comments.items() if context == prefix or context.startswith(prefix + ".")), [])
        if isinstance(message, tuple):
            yield lineno, "npgettext", (context, *message), notes
        else:
            yield lineno, "pgettext", (context, message), notes
