#!/usr/bin/env bash
# One prepared GPU check for cnnkit (about 6-10 minutes on one H100), run from a checkout:
#
#     OUT=/some/dir bash benchmarks/gpu_check.sh
#
# Expects: torch + lightning + torchmetrics (+ pluggy, jinja2, numpy, tqdm, matplotlib; weasyprint for the PDF)
# already installed, cnnkit NOT installed, no network. Data: mnist.npz and cifar10.npz in $CNNKIT_DATA_DIR
# (default: .data/ in the checkout). Steps:
#   1. environment report;
#   2. make cnnkit importable with its entry points: `pip install --no-deps --no-build-isolation --no-index -e .`,
#      else (no setuptools/wheel) a shim: a cnnkit-*.dist-info with the entry points plus the import-name links,
#      on PYTHONPATH;
#   3. benchmarks/throughput.py --device cuda, fp32 then bf16-mixed (the ratio lines);
#   4. `cnnkit run --all --quiet` (the whole assignment + report): wall time and the sum of train_seconds;
#   5. `cnnkit run --all --quiet --jobs N` (runs side by side on the one GPU) for N in $JOBS (default "4 7"),
#      each into a fresh directory: wall time and the speed-up over step 4 (one at a time);
#   6. if time is left: throughput with --compile and --channels-last (bf16-mixed).
# Everything is logged to $OUT/gpu_check.log; results (no checkpoints) and the report are copied to $OUT.
# The closing SUMMARY block holds every figure the closing note needs.

set -u -o pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/gpu-check-out}
mkdir -p "$OUT"
export CNNKIT_DATA_DIR=${CNNKIT_DATA_DIR:-$REPO/.data}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python}
RUNS=${RUNS_DIR:-$(mktemp -d /tmp/cnnkit-gpu-runs.XXXXXX)}
DETAIL=$(mktemp -d /tmp/cnnkit-gpu-detail.XXXXXX)  # per-step logs; OUT keeps a handful of files
LOG=$OUT/gpu_check.log
exec > >(tee -a "$LOG") 2>&1
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }
section() { echo; echo "=== $* (t=$(elapsed) s) ==="; }
# Benchmark output goes to a file; only its own lines (not the progress bars) are shown here.
show() { tr '\r' '\n' <"$1" | grep -aE '^(throughput:|data:|repeat |cnnkit:|plain:|per-repeat|cnnkit Trainer|cnnkit/plain|Traceback|[A-Za-z]*Error)' || true; }

section "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'EOF'
import importlib, platform, sys
print("python", sys.version.split()[0], platform.platform())
for name in ("torch", "lightning", "torchmetrics", "pluggy", "jinja2", "numpy", "tqdm", "matplotlib", "weasyprint",
             "setuptools", "wheel"):
    try:
        print(f"{name:13s} {getattr(importlib.import_module(name), '__version__', '?')}")
    except Exception as exc:
        print(f"{name:13s} MISSING ({type(exc).__name__})")
import torch
print("cuda", torch.cuda.is_available(), torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "bf16", torch.cuda.is_bf16_supported())
EOF
ls -la "$CNNKIT_DATA_DIR" || echo "no data directory at $CNNKIT_DATA_DIR"
if [ ! -f "$CNNKIT_DATA_DIR/cifar10.npz" ]; then
  # The real file (171 MB, already compressed) cannot travel to this machine: a synthetic one of the exact shapes
  # times the CIFAR-10 runs faithfully; their accuracies mean nothing.
  echo "cifar10.npz absent: writing a SYNTHETIC one (random pixels and labels, real shapes) for timing only"
  "$PY" - "$CNNKIT_DATA_DIR/cifar10.npz" <<'EOF2'
import sys, numpy as np
rng = np.random.default_rng(0)
np.savez(sys.argv[1], x_train=rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8),
         y_train=np.repeat(np.arange(10, dtype=np.uint8), 5000)[rng.permutation(50000)],
         x_test=rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8),
         y_test=np.repeat(np.arange(10, dtype=np.uint8), 1000))
EOF2
fi

section "install cnnkit (offline, no dependencies)"
entry_points_ok() {
  "$PY" -c "import importlib.metadata as m, sys; sys.exit(0 if {'nets','mnist'} <= {e.name for e in m.entry_points(group='cnnkit')} else 1)"
}
if "$PY" -m pip install --no-deps --no-build-isolation --no-index -e . >"$DETAIL/pip.log" 2>&1 && entry_points_ok; then
  echo "installed editable with pip"
else
  echo "pip install failed (see pip.log, tail below); using a PYTHONPATH shim with the entry points"
  tail -5 "$DETAIL/pip.log"
  SHIM=$(mktemp -d /tmp/cnnkit-shim.XXXXXX)
  ln -s "$REPO/plugins" "$SHIM/cnnkit_plugins"
  ln -s "$REPO/templates" "$SHIM/cnnkit_templates"
  "$PY" - "$SHIM" <<'EOF'
import pathlib, re, sys
shim = pathlib.Path(sys.argv[1])
# pyproject.toml's [project] version, [project.scripts] and [project.entry-points.*] (no tomllib before 3.11).
section, version, groups = "", "0", {}
for raw in pathlib.Path("pyproject.toml").read_text().splitlines():
    line = raw.split("#", 1)[0].strip()
    if line.startswith("["):
        section = line.strip("[]")
        continue
    match = re.match(r'^"?([\w.-]+)"?\s*=\s*"([^"]*)"$', line)
    if not match:
        continue
    key, value = match.groups()
    if section == "project" and key == "version":
        version = value
    elif section == "project.scripts":
        groups.setdefault("console_scripts", []).append(f"{key} = {value}")
    elif section.startswith("project.entry-points."):
        groups.setdefault(section.split(".", 2)[2], []).append(f"{key} = {value}")
info = shim / f"cnnkit-{version}.dist-info"
info.mkdir()
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: cnnkit\nVersion: {version}\n")
(info / "entry_points.txt").write_text("".join(f"[{g}]\n" + "\n".join(v) + "\n\n" for g, v in groups.items()))
print("shim:", info, {g: len(v) for g, v in groups.items()})
EOF
  export PYTHONPATH=$REPO:$SHIM${PYTHONPATH:+:$PYTHONPATH}
  entry_points_ok && echo "shim OK" || echo "shim FAILED: entry points still not visible"
fi
CNNKIT=("$PY" -m cnnkit.cli)
"${CNNKIT[@]}" --version
"${CNNKIT[@]}" list architectures

section "throughput fp32 (cuda)"
timeout 180 "$PY" benchmarks/throughput.py --device cuda >"$DETAIL/throughput_fp32.txt" 2>"$DETAIL/throughput_fp32.err"
echo "exit $?"; show "$DETAIL/throughput_fp32.txt"; tail -3 "$DETAIL/throughput_fp32.err"

section "throughput bf16-mixed (cuda)"
timeout 180 "$PY" benchmarks/throughput.py --device cuda --precision bf16-mixed \
  >"$DETAIL/throughput_bf16.txt" 2>"$DETAIL/throughput_bf16.err"
echo "exit $?"; show "$DETAIL/throughput_bf16.txt"; tail -3 "$DETAIL/throughput_bf16.err"

section "cnnkit run --all --quiet (the whole assignment, then the report)"
ALL0=$(date +%s.%N)
REPORT_FORMAT=html,pdf
"$PY" -c "import weasyprint" 2>/dev/null || { echo "no WeasyPrint here: HTML report only"; REPORT_FORMAT=html; }
timeout 420 "${CNNKIT[@]}" run --all --quiet --report-format "$REPORT_FORMAT" --out "$RUNS" >"$DETAIL/run_all.txt" 2>"$DETAIL/run_all.err"
ALL_RC=$?
ALL_WALL=$("$PY" -c "import time; print(f'{time.time() - $ALL0:.1f}')")
echo "exit $ALL_RC, wall $ALL_WALL s"; cat "$DETAIL/run_all.txt"; tail -5 "$DETAIL/run_all.err"
if [ ! -f "$RUNS/assignment/report/report.html" ] && [ -d "$RUNS/assignment" ]; then
  echo "no report from run --all; rendering HTML only"
  timeout 120 "${CNNKIT[@]}" report "$RUNS/assignment" --format html || true
fi
"$PY" - "$RUNS/assignment" "$ALL_WALL" <<'EOF' | tee "$OUT/run_all_summary.txt"
import json, pathlib, sys
study, wall = pathlib.Path(sys.argv[1]), float(sys.argv[2])
results = sorted(study.glob("*/result.json"))
total = 0.0
for path in results:
    r = json.loads(path.read_text())
    total += r["train_seconds"]
    print(f"{path.parent.name:40s} epochs {r['epochs']:2d}  train {r['train_seconds']:7.1f} s  "
          f"{r['images_per_second']:9.0f} img/s  test acc {r['test_accuracy']:.4f}  device {r.get('device', '?')}")
print(f"runs complete: {len(results)} of 7; sum of train_seconds: {total:.1f} s; wall time of run --all: {wall:.1f} s")
EOF
# results (no checkpoints) as one archive, and the report
(cd "$RUNS/assignment" 2>/dev/null && tar czf "$OUT/runs.tar.gz" study.json */result.json */metrics.csv */config.json) || true
for f in report.html report.pdf; do [ -f "$RUNS/assignment/report/$f" ] && cp "$RUNS/assignment/report/$f" "$OUT/"; done

JOB_LINES=()
for N in ${JOBS:-4 7}; do
  if [ "$(elapsed)" -gt 600 ]; then echo "skipping --jobs $N: $(elapsed) s used"; continue; fi
  section "cnnkit run --all --quiet --jobs $N (runs side by side on one GPU)"
  JRUNS=$(mktemp -d /tmp/cnnkit-gpu-jobs.XXXXXX)
  J0=$(date +%s.%N)
  timeout 300 "${CNNKIT[@]}" run --all --quiet --jobs "$N" --report-format html --out "$JRUNS" \
    >"$DETAIL/run_all_jobs$N.txt" 2>"$DETAIL/run_all_jobs$N.err"
  JRC=$?
  JWALL=$("$PY" -c "import time; print(f'{time.time() - $J0:.1f}')")
  DONE=$(ls "$JRUNS"/assignment/*/result.json 2>/dev/null | wc -l)
  LINE=$("$PY" -c "print(f'run --all --jobs $N: exit $JRC, wall $JWALL s, runs complete $DONE of 7, '
                        f'speed-up over one at a time {$ALL_WALL / $JWALL:.2f}x')")
  echo "$LINE"; JOB_LINES+=("$LINE")
  grep -a -E "started|finished in|FAILED|error" "$DETAIL/run_all_jobs$N.err" | tail -20
done

if [ "$(elapsed)" -lt 330 ]; then
  section "throughput bf16-mixed + channels_last + torch.compile (cuda)"
  timeout 150 "$PY" benchmarks/throughput.py --device cuda --precision bf16-mixed --channels-last --compile \
    --repeats 3 >"$DETAIL/throughput_bf16_cl_compile.txt" 2>"$DETAIL/throughput_bf16_cl_compile.err"
  echo "exit $?"; show "$DETAIL/throughput_bf16_cl_compile.txt"; tail -3 "$DETAIL/throughput_bf16_cl_compile.err"
else
  echo "skipping the compile/channels_last extra: $(elapsed) s used"
fi

section "SUMMARY"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1
"$PY" -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
for f in throughput_fp32 throughput_bf16 throughput_bf16_cl_compile; do
  [ -f "$DETAIL/$f.txt" ] && echo "$f: $(tr '\r' '\n' <"$DETAIL/$f.txt" | grep -a '^cnnkit/plain throughput ratio' | tail -1)"
done
tail -1 "$OUT/run_all_summary.txt" 2>/dev/null
for line in "${JOB_LINES[@]}"; do echo "$line"; done
echo "report: $(cd "$OUT" && ls report.* 2>/dev/null | tr "\n" " ")"
echo "total time of this check: $(elapsed) s"
