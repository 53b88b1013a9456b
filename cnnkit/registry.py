"""Typed registries filled by the plugins' `register` callbacks.

An entry's target may be the object itself or a lazy `"module:attr"` reference, so that registering
(and `cnnkit list`) never imports torch or lightning.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from cnnkit.errors import PluginError, UsageError

T = TypeVar("T")


Text = str | Mapping[str, str]  # one text, or one per report language: {"en": ..., "es": ...}


def _in_language(text: Text, lang: str) -> str:
    """`text` in `lang`, else in English ("" when neither is given)."""
    if isinstance(text, str):
        return text
    return text.get(lang) or text.get("en", "")


def _check_text(field_name: str, text: object) -> None:
    valid = isinstance(text, str) or (
        isinstance(text, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in text.items())
    )
    if not valid:
        raise TypeError(f"ReaderInfo.{field_name} must be a str or a {{language: str}} mapping, not {text!r}")


@dataclass(frozen=True)
class ReaderInfo:
    """How a report presents a dataset or architecture to its reader (every field optional).

    `display_name` and `summary` are one text or one per report language (`{"en": ..., "es": ...}`); a language
    a plugin does not give falls back to English, and a missing display name to the registry name.
    `common_name`, when given, names the entry in running text as a common noun that takes the language's
    article ("the pooling CNN (net_1)"); without it the display name is a proper name ("LeNet-5").
    `short_name` names it in tables and labels once it has been introduced (`net_1`), else the display name; an
    augmentation's or schedule's short name names it in configuration labels ("volteo+recorte", "programa coseno"),
    else its registry name.
    """

    display_name: Text = ""  # e.g. "LeNet-5", {"en": "Pooling CNN (net_1)", "es": "CNN con pooling (net_1)"}
    summary: Text = field(default_factory=dict)  # a sentence or two for the Methods section
    citation: str = ""  # the full reference for the References list, e.g. "LeCun, Y., ... (1998). ..."
    cite_as: str = ""  # its in-text form, e.g. "LeCun et al., 1998"
    # a dataset's class names per report language, in label order: {"es": ("camiseta", "pantalón", ...)}
    class_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    common_name: Text = ""  # e.g. {"en": "pooling CNN (net_1)", "es": "CNN con pooling (net_1)"}
    short_name: Text = ""  # e.g. "net_1"
    # a dataset's official distribution files: name -> SHA-256 (the report says when a run used other files)
    official_files: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for text_field in ("display_name", "summary", "common_name", "short_name"):
            _check_text(text_field, getattr(self, text_field))
        valid = isinstance(self.class_names, Mapping) and all(
            isinstance(lang, str) and isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)
            for lang, names in self.class_names.items()
        )
        if not valid:
            raise TypeError(f"ReaderInfo.class_names must map a language to a tuple of str, not {self.class_names!r}")
        for name in ("citation", "cite_as"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"ReaderInfo.{name} must be a str, not {getattr(self, name)!r}")

    def name_or(self, fallback: str, lang: str = "en") -> str:
        """The display name in `lang` (else English), or `fallback` (the registry name) when none is given."""
        return _in_language(self.display_name, lang) or fallback

    def common_in(self, lang: str) -> str:
        """The common noun for running text in `lang` (else English), or "" when the entry has a proper name."""
        return _in_language(self.common_name, lang)

    def short_in(self, lang: str) -> str:
        """The short name in `lang` (else English), or "" when none is given."""
        return _in_language(self.short_name, lang)

    def summary_in(self, lang: str) -> str:
        """The Methods sentence(s) in `lang`, else in English, else ""."""
        return _in_language(self.summary, lang)

    def classes_in(self, lang: str, names: Sequence[str]) -> list[str] | None:
        """The dataset's class names in `lang` when the plugin gives them for all of `names`, else None."""
        given = self.class_names.get(lang)
        return list(given) if given and len(given) == len(names) else None


@dataclass(frozen=True)
class StudyNotes:
    """What a study tells the report's reader beyond its runs (every field optional; one text or one per language).

    `introduction`: a paragraph stating the study's task. `explains` names the dataset whose published figures the
    comparison of an optimizer run far below its usual learning rate with one at its usual rate accounts for:
    `explanation` says so in the Discussion, `conclusion` in the Conclusions, with `{items}` for those runs.
    `cause` is the run setting the explanation blames (a study that does not vary it states a hypothesis), and
    `tested_by` the study that varies it, with seeds: the report names it, and quotes its answer when its
    results sit beside this study's (the same parent directory). `overfitting`: a paragraph for the Discussion's
    overfitting section (e.g. on how the work this study reproduces judged it).
    """

    introduction: Text = ""
    explains: str = ""
    explanation: Text = ""
    conclusion: Text = ""
    cause: str = ""
    tested_by: str = ""
    overfitting: Text = ""

    def __post_init__(self) -> None:
        for text_field in ("introduction", "explanation", "conclusion", "overfitting"):
            _check_text(text_field, getattr(self, text_field))

    def text(self, field_name: str, lang: str) -> str:
        """One of the texts in `lang`, else in English, else ""."""
        return _in_language(getattr(self, field_name), lang)


class RegisterCallback(Protocol):
    """The callback each hook receives."""

    def __call__(
        self,
        name: str,
        target: Any,
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        reader: ReaderInfo | None = None,
    ) -> None: ...


@dataclass
class Entry(Generic[T]):
    """One registered thing: its names, where it came from, and how to get it."""

    kind: str
    name: str
    target: T | str
    plugin: str
    distribution: str = ""
    version: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    reader: ReaderInfo = field(default_factory=ReaderInfo)
    _loaded: T | None = field(default=None, repr=False)

    def load(self) -> T:
        """The registered object, importing a `"module:attr"` reference on first use."""
        if self._loaded is None:
            if isinstance(self.target, str):
                module_name, _, attr = self.target.partition(":")
                try:
                    obj: Any = importlib.import_module(module_name)
                    for part in attr.split("."):
                        obj = getattr(obj, part)
                except (ImportError, AttributeError) as exc:
                    raise PluginError(
                        f"{self.kind} '{self.name}' from plugin '{self.plugin}' points to '{self.target}', "
                        f"which cannot be loaded: {exc}"
                    ) from exc
                self._loaded = obj
            else:
                self._loaded = self.target
        return self._loaded

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "display_name": self.reader.name_or(self.name),
            "citation": self.reader.citation,
        }


class Registry(Generic[T]):
    """Names (and aliases) to entries of one kind; refuses duplicates, explains unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._names: dict[str, Entry[T]] = {}

    def add(self, entry: Entry[T]) -> None:
        for key in (entry.name, *entry.aliases):
            if not key or not isinstance(key, str):
                raise PluginError(f"plugin '{entry.plugin}' registered a {self.kind} with an empty or non-text name")
            if key in self._names:
                other = self._names[key]
                raise PluginError(
                    f"{self.kind} name '{key}' is registered twice: by plugin '{other.plugin}' "
                    f"and by plugin '{entry.plugin}'; uninstall or rename one of them"
                )
        self._entries[entry.name] = entry
        for key in (entry.name, *entry.aliases):
            self._names[key] = entry

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._names[name]
        except KeyError:
            raise UsageError(self._unknown_message(name)) from None

    def get(self, name: str) -> T:
        return self.entry(name).load()

    def canonical(self, name: str) -> str:
        return self.entry(name).name

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown_message(self, name: str) -> str:
        known = sorted(self._names)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = ", ".join(sorted(self._entries)) or "none"
        return f"unknown {self.kind} '{name}'{hint} (available: {listing})"
