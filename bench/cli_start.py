"""Start-up time of the ``tearline`` command against a bare interpreter (the CLI speed issue).

The goal: ``tearline --help`` and the other commands that do not touch the app start in at most
15 times the wall time of ``python -c pass`` (the same interpreter, the same site-packages).
Each round runs every command once, in an order rotated from round to round, so that whatever
else the machine is doing weighs on all of them alike; the figures are medians over the rounds.
Every command runs once before the timed rounds (the file cache is warm for all of them).

Reported per command: the median, lowest and highest wall time, the median CPU time (user +
system, of the child: less sensitive to other load than wall time) and the ratio of the medians
to ``python -c pass``. The verdict holds when every CLI command's wall ratio is within the goal.
Written to ``bench/results/cli-start.json`` (``--out``). ``--check`` exits 1 when the goal is
missed; otherwise the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "cli-start.json"
GOAL = 15.0
BASELINE = "python -c pass"


def _tearline() -> list[str]:
    """The installed console script next to this interpreter, else the module run by it."""
    script = Path(sys.executable).with_name("tearline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli.main"]


def commands() -> dict[str, list[str]]:
    """Name -> argv of every command timed; the baseline first."""
    tearline = _tearline()
    return {
        BASELINE: [sys.executable, "-c", "pass"],
        "tearline --help": [*tearline, "--help"],
        "tearline token --help": [*tearline, "token", "--help"],
    }


def _environment() -> dict[str, str]:
    # No TEARLINE_* variable of the caller's: --help reads no settings, and none should steer it.
    return {name: value for name, value in os.environ.items() if not name.startswith("TEARLINE_")}


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run; a failing command stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(runs: int, argvs: dict[str, list[str]]) -> dict[str, dict[str, list[float]]]:
    """``runs`` rounds of every command, interleaved; per command its wall and CPU seconds."""
    env = _environment()
    names = list(argvs)
    for name in names:  # warm-up, not counted
        run_once(argvs[name], env)
    samples: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in names}
    for round_no in range(runs):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = run_once(argvs[name], env)
            samples[name]["wall"].append(wall)
            samples[name]["cpu"].append(cpu)
    return samples


def summarise(samples: dict[str, dict[str, list[float]]], goal: float) -> dict[str, Any]:
    """Medians, extremes and ratios to the baseline, and whether every CLI command meets ``goal``."""
    base_wall = statistics.median(samples[BASELINE]["wall"])
    base_cpu = statistics.median(samples[BASELINE]["cpu"])
    rows: dict[str, dict[str, float]] = {}
    for name, figures in samples.items():
        wall, cpu = statistics.median(figures["wall"]), statistics.median(figures["cpu"])
        rows[name] = {
            "median_ms": round(wall * 1000, 1),
            "min_ms": round(min(figures["wall"]) * 1000, 1),
            "max_ms": round(max(figures["wall"]) * 1000, 1),
            "cpu_median_ms": round(cpu * 1000, 1),
            "ratio": round(wall / base_wall, 2),
            "cpu_ratio": round(cpu / base_cpu, 2) if base_cpu else float("nan"),
        }
    worst = max(row["ratio"] for name, row in rows.items() if name != BASELINE)
    return {"commands": rows, "worst_ratio": worst, "goal_ratio": goal, "goal_met": worst <= goal}


def report(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table and a verdict line."""
    lines = [f"{'command':<24}{'median ms':>11}{'min':>8}{'max':>8}{'cpu ms':>9}{'ratio':>8}{'cpu ratio':>11}"]
    for name, row in summary["commands"].items():
        lines.append(
            f"{name:<24}{row['median_ms']:>11.1f}{row['min_ms']:>8.1f}{row['max_ms']:>8.1f}"
            f"{row['cpu_median_ms']:>9.1f}{row['ratio']:>7.1f}x{row['cpu_ratio']:>10.1f}x"
        )
    verdict = "MET" if summary["goal_met"] else "MISSED"
    lines.append(
        f"goal {verdict}: slowest CLI command {summary['worst_ratio']:.1f}x `{BASELINE}` "
        f"(goal <= {summary['goal_ratio']:.0f}x, medians of wall time)"
    )
    return "\n".join(lines)


def _git(*args: str) -> str | None:
    """The output of a read-only git command in the repository, or None without git."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 1 with ``--check`` when the goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="timed rounds (each runs every command once)")
    parser.add_argument("--goal", type=float, default=GOAL, help="the highest ratio to `python -c pass` allowed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    argvs = commands()
    load_before = os.getloadavg()
    samples = measure(args.runs, argvs)
    summary = summarise(samples, args.goal)
    print(report(summary))
    result = {
        "command": "python bench/cli_start.py" + (f" --runs {args.runs}" if args.runs != 20 else ""),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD") or None,
        # The figures are those of the working tree: say whether the CLI differs from the commit.
        "cli_changed_since_commit": bool(_git("status", "--porcelain", "--", "app/cli")),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        # Other work on the machine slows every command; the interleaving spreads it, this shows it.
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "runs": args.runs,
        "argv": {name: [Path(a).name if a.startswith("/") else a for a in argv_] for name, argv_ in argvs.items()},
        **summary,
        "samples_ms": {
            name: {kind: [round(s * 1000, 2) for s in values] for kind, values in figures.items()}
            for name, figures in samples.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 1 if args.check and not summary["goal_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
