"""Environment variables of the RL scripts, the seed's (hippotorch 0.5.0) included, as arguments.

``scripts/corridor_multiseed_zn.sh``, ``scripts/quick_cartpole.sh`` and
``scripts/corridor_curriculum.sh`` call this module to turn their environment into the argument list
of their experiment. It reads each script's own variables and the variables the seed's script of the
same name read, with the seed's meaning, and says on stderr, before anything runs, how each seed
variable was taken. No variable a script documents is ignored silently.

Usage (what the scripts do)::

    python benchmarks/rl/seed_vars.py corridor_zn        # prints one argument per line
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

__all__ = ["SCRIPTS", "seed_args"]

Mapped = tuple[list[str], list[str]]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def _out(env: Mapping[str, str], default: str, args: list[str], notes: list[str]) -> None:
    out = _get(env, "OUT") or default
    if out.endswith(".csv"):
        folder = out[: -len(".csv")]
        args += ["--out", folder, "--csv", out]
        notes.append(f"OUT={out} (seed: a CSV file) -> one row per run in {out}, runs and summaries in {folder}/")
    else:
        args += ["--out", out]


def _take(env: Mapping[str, str], args: list[str], notes: list[str], var: str, flag: str, meaning: str) -> None:
    """A variable that maps straight to one option: ``flag <value>``, with its note."""
    if _get(env, var):
        args += [flag, env[var]]
        notes.append(f"{var}={env[var]} ({meaning}) -> {flag} {env[var]}")


def _cons_every(env: Mapping[str, str], args: list[str], notes: list[str]) -> None:
    """The corridor scripts' consolidation interval: the seed's CONS_EVERY counts episodes."""
    if _get(env, "CONS_EVERY"):
        args += ["--cons-every-episodes", env["CONS_EVERY"]]
        notes.append(f"CONS_EVERY={env['CONS_EVERY']} counts episodes, as in the seed -> consolidate every "
                     f"{env['CONS_EVERY']} training episodes (CONS_EVERY_STEPS counts transitions instead)")
    else:
        args += ["--cons-every", _get(env, "CONS_EVERY_STEPS") or "2000"]


def _corridor_zn(env: Mapping[str, str]) -> Mapped:
    args: list[str] = ["--slip", "0"]
    notes: list[str] = []
    seed_mode = _get(env, "LENGTHS") is None and any(_get(env, v) for v in ("LENGTH", "CONS_EVERY", "EPISODES"))
    if _get(env, "LENGTHS"):
        lengths = env["LENGTHS"]
        if _get(env, "LENGTH"):
            notes.append(f"LENGTH={env['LENGTH']} (seed) is overridden by LENGTHS={lengths}")
    elif seed_mode:
        lengths = _get(env, "LENGTH") or "30"
        default = "" if _get(env, "LENGTH") else ", default 30"
        notes.append(f"LENGTH={lengths} (seed: one corridor length per call{default}) -> --lengths {lengths}")
    else:
        lengths = "30,50,100"
    args += ["--seeds", _get(env, "SEEDS") or "5", "--lengths", lengths,
             "--steps", _get(env, "STEPS") or "30000,50000,80000"]
    _take(env, args, notes, "EPISODES", "--episodes", "as in the seed: training episodes per run")
    _cons_every(env, args, notes)
    args += ["--cons-steps", _get(env, "CONS_STEPS") or "50", "--arms", _get(env, "ARMS") or "uniform,hybrid",
             "--workers", _get(env, "WORKERS") or "2"]
    _out(env, "runs/rl/corridor_zn", args, notes)
    return args, notes


def _quick_cartpole(env: Mapping[str, str]) -> Mapped:
    args: list[str] = ["--seeds", _get(env, "SEEDS") or "5", "--steps", _get(env, "STEPS") or "50000"]
    notes: list[str] = []
    every = _get(env, "CONS_EVERY")
    if every is None and _get(env, "CONS_INTERVAL"):
        every = env["CONS_INTERVAL"]
        notes.append(f"CONS_INTERVAL={every} (seed: env steps between consolidations) -> --cons-every {every}")
    args += ["--cons-every", every or "5000", "--cons-steps", _get(env, "CONS_STEPS") or "50",
             "--workers", _get(env, "WORKERS") or "2"]
    _take(env, args, notes, "BATCH", "--batch-size", "seed: the batch size, of every arm")
    _take(env, args, notes, "SCHEDULE", "--cons-schedule", "seed: consolidation schedule")
    ramp = [_get(env, v) for v in ("SCHED_START", "SCHED_END", "WARMUP")]
    if any(ramp):
        start, end, warmup = ramp[0] or "0.0", ramp[1] or "0.5", ramp[2] or "8000"
        args += ["--mixture-ramp", f"{start},{end},{warmup}"]
        notes.append(f"SCHED_START={start} SCHED_END={end} WARMUP={warmup} (seed: mixture schedule) -> the mixture "
                     f"ratio ramps from {start} to {end} over {warmup} transitions")
        if _get(env, "MIXTURE_RATIO"):
            notes.append(f"MIXTURE_RATIO={env['MIXTURE_RATIO']} is overridden by that schedule, as in the seed")
    elif _get(env, "MIXTURE_RATIO"):
        args += ["--mixture", env["MIXTURE_RATIO"]]
        notes.append(f"MIXTURE_RATIO={env['MIXTURE_RATIO']} (seed) -> --mixture {env['MIXTURE_RATIO']}")
    _take(env, args, notes, "EVAL_EPS", "--eval-episodes", "seed: evaluation episodes")
    _take(env, args, notes, "LOG_INTERVAL", "--eval-every", "seed: progress lines; here an evaluation row")
    _out(env, "runs/rl/cartpole", args, notes)
    return args, notes


def _corridor_curriculum(env: Mapping[str, str]) -> Mapped:
    args: list[str] = ["--seeds", _get(env, "SEEDS") or "5"]
    notes: list[str] = []
    shape = [_get(env, v) for v in ("MIN_LENGTH", "LENGTH", "LENGTH_STEP")]
    if _get(env, "LENGTHS"):
        lengths = env["LENGTHS"]
    elif any(shape):
        low, high, step = int(shape[0] or 5), int(shape[1] or 30), int(shape[2] or 5)
        lengths = ",".join(str(n) for n in range(low, high + 1, step))
        notes.append(f"MIN_LENGTH={low} LENGTH={high} LENGTH_STEP={step} (seed: the curriculum's lengths) -> "
                     f"--lengths {lengths}")
    else:
        lengths = "10,20,30,50"
    args += ["--lengths", lengths]
    if _get(env, "EPISODES"):
        cap = _get(env, "STEPS") or str(int(env["EPISODES"]) * 4 * max(int(x) for x in lengths.split(",")))
        args += ["--episodes", env["EPISODES"], "--steps", cap]
        notes.append(f"EPISODES={env['EPISODES']} (seed: training episodes per run) -> --episodes, "
                     f"at most {cap} env steps")
    else:
        args += ["--steps", _get(env, "STEPS") or "60000"]
    _cons_every(env, args, notes)
    args += ["--cons-steps", _get(env, "CONS_STEPS") or "50", "--workers", _get(env, "WORKERS") or "2"]
    _take(env, args, notes, "SUCCESS_WINDOW", "--window", "seed: episodes judged for promotion")
    _take(env, args, notes, "SUCCESS_THRESHOLD", "--promote-at", "seed: promotion threshold")
    _out(env, "runs/rl/curriculum", args, notes)
    return args, notes


#: Script name -> mapping function.
SCRIPTS: dict[str, Callable[[Mapping[str, str]], Mapped]] = {
    "corridor_zn": _corridor_zn,
    "quick_cartpole": _quick_cartpole,
    "corridor_curriculum": _corridor_curriculum,
}


def seed_args(script: str, env: Mapping[str, str]) -> Mapped:
    """The experiment's arguments for ``script`` under ``env``, and one note per seed variable taken.

    Raises:
        KeyError: An unknown script name.
    """
    return SCRIPTS[script](env)


def main(argv: list[str] | None = None) -> int:
    import os

    argv = sys.argv[1:] if argv is None else argv
    argv = [a for a in argv if not a.startswith("--")]  # flags a PYTHON wrapper appends (e.g. --dry-run)
    if len(argv) != 1 or argv[0] not in SCRIPTS:
        print(f"usage: seed_vars.py {{{','.join(SCRIPTS)}}}", file=sys.stderr)
        return 2
    args, notes = seed_args(argv[0], os.environ)
    for note in notes:
        print(f"[seed variables] {note}", file=sys.stderr)
    print("\n".join(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
