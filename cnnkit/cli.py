"""The `cnnkit` command. Heavy libraries are imported inside the commands that need them."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import functools
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cnnkit import __version__
from cnnkit.errors import UsageError
from cnnkit.failures import command_line_exit
from cnnkit.training.config import BY_NAME, SETTINGS
from cnnkit.training.values import integer_flag

KINDS = ("datasets", "architectures", "optimizers", "studies", "augmentations", "schedules")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) that point to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnkit",
        description=(
            "Run a CNN study end to end and write it up: MNIST and CIFAR-10, a max-pooling and a strided-convolution "
            "net, Adam/Adagrad/Adadelta, as an IMRaD report. 'cnnkit run --all' does the whole assignment."
        ),
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks (for bug reports)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    listing = commands.add_parser(
        "list",
        help="list registered datasets, architectures, optimizers, studies",
        description="List what the installed plugins register.",
    )
    listing.add_argument("kind", nargs="?", choices=KINDS, help="only this kind")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--plugins", action="store_true", help="list plugins (and any that failed to load)")

    summary = commands.add_parser(
        "summary",
        help="Keras-style layer table of an architecture",
        description="Print layers, output shapes and parameter counts.",
    )
    summary.add_argument("architecture", help="e.g. pooling_cnn (net_1) or strided_cnn (net_2)")
    summary.add_argument("--dataset", required=True, help="the dataset fixing input shape and classes")
    summary.add_argument("--preset", default="keras", help="keras (default) or torch")
    arch = BY_NAME["arch"]
    summary.add_argument(arch.option, type=arch.parse or str, metavar=arch.metavar, help=arch.help)

    run = commands.add_parser(
        "run",
        help="train one run, a study, or the whole assignment (--all)",
        description=(
            "Train DATASET with ARCH, or every run of a study. Results go to "
            "OUT/<study>/<dataset>-<arch>-<optimizer>[-<settings that differ from the defaults>]-seed<k>/ "
            "(study 'single' for one run). "
            "Finished runs are skipped and unfinished ones resume from their last epoch."
        ),
    )
    run.add_argument("dataset", nargs="?", help="dataset name (see 'cnnkit list datasets')")
    run.add_argument("architecture", nargs="?", help="architecture name (see 'cnnkit list architectures')")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="run the 'assignment' study, then write its report")
    which.add_argument("--study", metavar="NAME_OR_TOML", help="a registered study or a study TOML file")
    _add_setting_flags(run)
    run.add_argument("--seeds", type=integer_flag("--seeds", 1), help="studies: run seeds 0..N-1")
    run.add_argument("--out", type=Path, default=Path("runs"), help="results directory (default ./runs)")
    run.add_argument("--data-dir", help="where datasets are read/downloaded (default $CNNKIT_DATA_DIR or cache)")
    run.add_argument("--fresh", action="store_true", help="discard existing results of these runs and start over")
    run.add_argument("--quiet", action="store_true", help="no progress lines (results and errors only)")
    run.add_argument(
        "--verbose", action="store_true", help="also show Lightning's own messages (devices, checkpoint restore, stop)"
    )
    run.add_argument(
        "--logger",
        choices=("tensorboard", "csv"),
        help="also log epoch curves with Lightning's logger into RUN_DIR/logs (tensorboard --logdir runs/)",
    )
    run.add_argument("--accelerator", default="auto", help="cpu, gpu, auto (default)...")
    run.add_argument("--devices", default="auto", help="number of devices or 'auto'")
    run.add_argument("--strategy", default="auto", help="e.g. ddp (Lightning strategies)")
    run.add_argument("--precision", default="32-true", help="e.g. 32-true (default), bf16-mixed, 16-mixed")
    run.add_argument("--num-nodes", type=integer_flag("--num-nodes", 1), default=1, help="nodes for ddp")
    run.add_argument("--compile", action="store_true", help="torch.compile the network (GPU speed-up)")
    run.add_argument("--channels-last", action="store_true", help="channels_last memory format (GPU speed-up)")
    run.add_argument(
        "--jobs", help="studies: runs at once in long-lived worker processes (N or auto, the default; 1: one at a time)"
    )
    run.add_argument("--executor", choices=("local", "ray"), default="local", help="studies: local (default) or ray")
    run.add_argument("--ray-address", help="with --executor ray: a running Ray cluster (default: start one here)")
    run.add_argument(
        "--storage",
        metavar="URL",
        help="a search study ([search]): keep the search in this RDB (e.g. postgresql://user@host/db) instead of "
        "the journal file in the study directory, for machines without a shared disk",
    )
    run.add_argument("--lang", default="en", help="report language after --all/--study (en or es)")
    run.add_argument("--report-format", default="html,pdf", help="report formats after --all/--study (html,pdf)")

    status = commands.add_parser(
        "status",
        help="where a study stands: finished, running, interrupted and pending runs, time left",
        description="Read STUDY_DIR's files (no training process is disturbed) and say where the study stands.",
    )
    status.add_argument("study_dir", type=Path, help="e.g. runs/assignment")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    report = commands.add_parser(
        "report",
        help="render a study directory's IMRaD report (HTML, PDF)",
        description="Render STUDY_DIR/report/report.html and report.pdf (report.es.html, ... in another language) "
        "from the results.",
    )
    report.add_argument("study_dir", type=Path)
    report.add_argument("--format", default="html,pdf", help="comma-separated: html, pdf (default both)")
    report.add_argument("--lang", default="en", help="en (default) or es")
    report.add_argument(
        "--out", type=Path, help="write the report files into this folder instead (a read-only or shipped study)"
    )

    data = commands.add_parser("data", help="check or fetch datasets", description="Manage the data directory.")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    for name, text in (
        ("verify", "check what the data directory holds"),
        ("download", "download the official files (checksums verified)"),
    ):
        sub = data_commands.add_parser(name, help=text, description=text)
        sub.add_argument("datasets", nargs="*", help="dataset names (default: all)")
        sub.add_argument("--data-dir", help="default $CNNKIT_DATA_DIR or the per-user cache")
    importing = data_commands.add_parser(
        "import",
        help="copy dataset files you already have into the data directory (validated)",
        description="Copy files such as mnist.npz, the MNIST IDX files or cifar-10-python.tar.gz into the data "
        "directory; they are validated there, and an invalid one is removed again. Existing files are never replaced.",
    )
    importing.add_argument("files", nargs="+", type=Path)
    importing.add_argument("--data-dir", help="default $CNNKIT_DATA_DIR or the per-user cache")
    return parser


def _add_setting_flags(run: argparse.ArgumentParser) -> None:
    """A `cnnkit run` option for every flagged setting of the schema, the training levers in a group of their own.

    Every default is None, so that an unset flag keeps the schema's default (and can be told apart from one given
    with --study, which refuses all but the budget and the seed)."""
    levers = run.add_argument_group(
        "training levers (all off by default; a run that uses one is named after it, e.g. ...-adam-drop0.25-seed0)"
    )
    for setting in SETTINGS:
        if setting.flag:
            group = levers if setting.lever else run
            group.add_argument(setting.option, type=setting.parse or str, metavar=setting.metavar, help=setting.help)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["cnnkit", *(sys.argv[1:] if argv is None else argv)])
    if args.command is None:
        parser.print_help()
        return 0
    from cnnkit.console.terminal import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except (Exception, KeyboardInterrupt) as exc:
        return command_line_exit(exc, args.command_line, debug=args.debug)


def cmd_list(args: argparse.Namespace) -> int:
    from cnnkit.plugins import get_registries

    registries = get_registries()
    if args.plugins:
        plugins = [dataclasses.asdict(p) for p in registries.plugins]
        if args.json:
            print(json.dumps(plugins, indent=2))
        for p in [] if args.json else plugins:
            state = "ok" if p["loaded"] else f"FAILED: {p['error']}"
            print(f"{p['name']:<28} {p['distribution']} {p['version']}  {state}")
        return 0
    kinds = [args.kind] if args.kind else list(KINDS)
    listing = {kind: [entry.as_dict() for entry in getattr(registries, kind)] for kind in kinds}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for kind in kinds:
        print(f"{kind}:")
        for entry in listing[kind]:
            aliases = f" (alias {', '.join(entry['aliases'])})" if entry["aliases"] else ""
            origin = f"{entry['distribution']} {entry['version']}".strip() or entry["plugin"]
            print(f"  {entry['name']}{aliases} - {entry['description']} [{origin}]")
    for failure in registries.failures:
        print(
            f"warning: plugin {failure.distribution} ({failure.name}) failed to load: {failure.error}",
            file=sys.stderr,
        )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnkit.plugins import get_registries
    from cnnkit.training.settings import run_config

    registries = get_registries()
    # checked as a run's settings are: names, preset, and the arch table against the architecture and the images
    config = run_config(args.dataset, args.architecture, preset=args.preset, arch=args.arch).checked(registries)
    datamodule = registries.datasets.get(config.dataset)
    architecture = registries.architectures.get(config.architecture)
    from cnnkit.nets.summary import format_summary, summarize

    shape = datamodule.input_shape()
    model = architecture(shape, datamodule.num_classes(), None, config.preset, arch=config.arch)
    summary = summarize(model.network, shape)
    spec = getattr(model, "spec", None)
    if spec is not None:  # a network of the convnet family: its whole table, as --arch takes it
        print(f"arch = {BY_NAME['arch'].cli_text(spec.table())}")
    print(format_summary(f"{config.architecture} on {config.dataset}", summary))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if (args.all or args.study) and args.executor == "local":
        from cnnkit.studies.resources import may_run_side_by_side
        from cnnkit.studies.worker_server import start_worker_server

        if may_run_side_by_side(args.jobs):
            start_worker_server()  # its imports overlap with the command's own
    from cnnkit.plugins import get_registries
    from cnnkit.training.runner import execute
    from cnnkit.training.settings import run_config, trainer_options

    registries = get_registries()
    options = trainer_options(
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        precision=args.precision,
        num_nodes=args.num_nodes,
        data_dir=args.data_dir,
        quiet=args.quiet,
        verbose=args.verbose,
        logger=args.logger,
        compile=args.compile,
        channels_last=args.channels_last,
    )
    if args.all or args.study:
        return _run_study(args, registries, options)
    if not (args.dataset and args.architecture):
        raise UsageError("give DATASET and ARCH (e.g. 'cnnkit run mnist net_1'), or --all, or --study NAME")
    if args.seeds:
        raise UsageError("--seeds is for studies; for a single run use --seed")
    if args.jobs is not None or args.executor != "local":
        raise UsageError("--jobs and --executor are for studies (--study, --all)")
    if args.storage is not None:
        raise UsageError("--storage is for a search study (--study FILE with a [search] table)")
    given = {s.name: getattr(args, s.name) for s in SETTINGS if s.flag}  # an unset flag (None): the default
    config = run_config(args.dataset, args.architecture, **given)
    outcome = execute(config, options, args.out, fresh=args.fresh, registries=registries)
    _print_outcome(outcome)
    return 0


def _run_study(args: argparse.Namespace, registries: Any, options: Any) -> int:
    from cnnkit.studies.study import budget_name, checked_plan, resolve_study, run_study

    if args.dataset or args.architecture:
        raise UsageError("--all/--study run a whole study: drop DATASET and ARCH")
    ignored = [s.option for s in SETTINGS if s.flag and not s.overrides_study and getattr(args, s.name) is not None]
    if ignored:
        raise UsageError(f"{', '.join(ignored)} cannot override a study; write a study TOML file instead")
    from cnnkit.studies.resources import check_executor, check_parallel_options, resolve_jobs

    jobs = resolve_jobs(args.jobs, args.executor)
    check_executor(args.executor, args.ray_address)
    if args.executor == "ray" or (jobs or 1) > 1:
        check_parallel_options(options)  # before any data is looked for
    from cnnkit.report.render import check_formats, load_text

    formats = check_formats(args.report_format)  # refuse a typo now, not after hours of training
    load_text(args.lang)
    study = resolve_study("assignment" if args.all else args.study, registries)
    seeds = [args.seed] if args.seed is not None else (list(range(args.seeds)) if args.seeds else None)
    planned = checked_plan(study, registries, args.epochs, args.subset, seeds)  # a bad study file: one line
    if not args.quiet:  # at once: PyTorch and Lightning take seconds to load, and the screen would stay blank
        from cnnkit.console.progress import plural

        where = Path(args.out) / budget_name(study, args.epochs, args.subset)
        search = study.search
        runs = plural(search.trials, "trial") if search is not None and search.trials else plural(len(planned), "run")
        print(
            f"Study {study.name}: {runs} into {where}/ (loading PyTorch and Lightning...)", file=sys.stderr, flush=True
        )
    started = time.monotonic()
    outcomes = run_study(
        study,
        options,
        args.out,
        fresh=args.fresh,
        epochs=args.epochs,
        subset=args.subset,
        seeds=seeds,
        registries=registries,
        command=args.command_line,
        jobs=jobs,
        executor=args.executor,
        ray_address=args.ray_address,
        storage=args.storage,
    )
    from cnnkit.console.study_progress import summary_table
    from cnnkit.report.render import render_report

    if not outcomes:  # a search with nothing to confirm
        return 0
    print(summary_table(outcomes, time.monotonic() - started))
    for path in render_report(Path(args.out) / budget_name(study, args.epochs, args.subset), formats, args.lang):
        print(f"report: {path}")
    return 0


def _print_outcome(outcome: Any) -> None:
    from cnnkit.console.progress import test_line

    if not outcome.result:
        return
    print(test_line(outcome.result))
    state = "already complete, skipped (use --fresh to run it again)" if outcome.skipped else "done"
    print(f"results: {outcome.run_dir} ({state})")


def cmd_status(args: argparse.Namespace) -> int:
    from cnnkit.studies.status import print_status

    return print_status(args.study_dir, args.json)


def cmd_report(args: argparse.Namespace) -> int:
    from cnnkit.report.render import check_formats, load_text, render_report
    from cnnkit.results.runs import load_study

    formats = check_formats(args.format)
    load_text(args.lang)
    stored = load_study(args.study_dir)
    for run in stored.damaged:
        print(f"cnnkit: {run.dir}: {run.reason}; the report leaves it out", file=sys.stderr)
    if not stored.runs:
        return _nothing_to_report(args.study_dir)
    for path in render_report(args.study_dir, formats=formats, lang=args.lang, out=args.out):
        print(f"report: {path}")
    return 0


def _nothing_to_report(study_dir: Path) -> int:
    """`cnnkit report` on a study without a finished run: refused (exit 2), with where the study stands."""
    from cnnkit.studies.status import format_status, study_status

    print(f"cnnkit: error: {study_dir} has no finished run to report on; cnnkit status says:", file=sys.stderr)
    print(format_status(study_status(study_dir)), file=sys.stderr)
    return 2


def cmd_data(args: argparse.Namespace) -> int:
    from cnnkit.data.formats import default_data_dir, describe_source_status, load_image_set
    from cnnkit.plugins import get_registries

    registries = get_registries()
    data_dir = default_data_dir(args.data_dir)
    print(f"data directory: {data_dir}")
    if args.data_command == "import":
        names = _import_files(args.files, data_dir, registries)
    else:
        names = args.datasets or [entry.name for entry in registries.datasets]
    invalid = False
    for name in names:
        module = registries.datasets.get(name)
        if args.data_command == "download":
            print(f"{name}: ready ({load_image_set(module.spec, module.sources, data_dir, download=True).source})")
            continue
        for line in describe_source_status(module.spec, module.sources, data_dir):
            invalid = invalid or " INVALID: " in line
            print(line)
    return 2 if invalid else 0


def _import_files(files: list[Path], data_dir: Path, registries: Any) -> list[str]:
    """Copy each known dataset file into `data_dir` (never over an existing one); the datasets they belong to."""
    from cnnkit.data.formats import describe_source_status
    from cnnkit.errors import DataError
    from cnnkit.storage.atomic import write_atomic

    known = {}
    for entry in registries.datasets:
        for source in getattr(entry.load(), "sources", ()):
            for pattern in source.filenames():
                base = pattern.removesuffix("[.gz]").rstrip("/")
                known.update(
                    {base: entry.name, f"{base}.gz": entry.name} if pattern.endswith("[.gz]") else {base: entry.name}
                )
    datasets: list[str] = []
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path} is not a file")
        if path.name not in known:
            names = sorted(name for name in known if "/" not in name and not name.endswith(".gz"))
            raise UsageError(
                f"{path.name} is not a dataset file cnnkit knows (known: {', '.join(names)}; IDX files may be gzipped)"
            )
        target = data_dir / path.name
        if target.exists():
            raise UsageError(f"{target} already exists; remove it first to replace it")
        try:
            write_atomic(target, functools.partial(_copy_file, path))
        except OSError as exc:
            raise DataError(f"cannot copy {path} to {data_dir}: {exc.strerror or exc}") from exc
        module = registries.datasets.get(known[path.name])
        problems = [
            line
            for line in describe_source_status(module.spec, module.sources, data_dir)
            if " INVALID: " in line and str(target) in line
        ]
        if problems:
            target.unlink()
            raise DataError(f"{problems[0].split(' INVALID: ', 1)[1]} (not imported)")
        print(f"imported {path.name} ({known[path.name]})")
        datasets.append(known[path.name])
    return sorted(set(datasets))


def _copy_file(path: Path, handle: Any) -> None:
    with open(path, "rb") as source:
        shutil.copyfileobj(source, handle)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list,
    "summary": cmd_summary,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "data": cmd_data,
}


def entry() -> NoReturn:
    """The `cnnkit` command: `main()`, then an exit without the interpreter's teardown.

    Once torch and Lightning are imported, Python's teardown takes 1.5-3 s (measured on a 2-core machine) and does
    nothing a finished command needs: every file it wrote is closed and renamed by then. The exit handlers still
    run (logging's flush, the clean-up of multiprocessing and Ray, a plugin's own), then the standard streams are
    flushed."""
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C before the command's own handling began (its first imports)
        code = 130
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken pipe: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
