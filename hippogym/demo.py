"""The end-to-end demo behind ``hippogym demo``: record, consolidate, save, reload, retrieve.

Everything runs on the built-in ``hippogym/SparseCorridor-v0`` (no download):

1. **Record** ``steps`` environment steps of a random policy slightly biased to the right into a
   :class:`~hippogym.HippocampalReplayBuffer` through :class:`~hippogym.RecordEpisodes`; the
   corridor pays ``1.0`` only at its far end, so only some episodes succeed.
2. **Consolidate** the memory and measure its key space before and after
   (:func:`~hippogym.memory_quality`): ``reward_alignment`` (do a transition's nearest neighbours
   share its episode's return?) and ``success_precision`` (for transitions of successful episodes,
   the share of neighbours that are successes too, against the base rate).
3. **Save** the memory to a ``hippo_format`` directory, **reload** it and check that the reload
   is exact (same keys, same next batch).
4. **Retrieve** from the reloaded memory for a query at the corridor start and one near the goal
   (two cells before it: every successful episode steps from there with reward 0, as the query
   does), list the top units with their scores, returns and success flags, and report how the
   units that match the query best turned out.

On this corridor the observation is a one-hot cell, so every visit of a cell gets the same key
whatever the episode's outcome; consolidation reorganises keys between cells, but the quality
figures, which look at each transition's nearest neighbours, are dominated by such exact matches
and move little. Retrieval is still informative: the units that visited the cell near the goal
succeeded far more often than the average.

:func:`run_demo` returns all of it as a dict; the CLI prints it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hippogym.errors import ValidationError, describe

__all__ = ["ENV_ID", "format_demo", "run_demo"]

logger = logging.getLogger(__name__)

ENV_ID = "hippogym/SparseCorridor-v0"
_QUALITY_KEYS = ("reward_alignment", "success_precision", "success_base_rate", "effective_rank")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValidationError(name, f"an int >= {low}", describe(value))
    return int(value)


def _retrieval(buffer: Any, query: np.ndarray, top_k: int) -> dict[str, Any]:
    """The ``top_k`` units for ``query``, plus how the units that match it best turned out."""
    pool = buffer.retrieve(torch.from_numpy(query), top_k=buffer.num_episodes, record_hits=False)
    scores, ids = pool.scores[0].tolist(), pool.episode_ids[0].tolist()
    rows = []
    for score, uid in list(zip(scores, ids))[:top_k]:
        if uid < 0:
            continue
        ep = buffer.episode(int(uid))
        rows.append({
            "unit": int(uid), "score": round(float(score), 4), "return": float(ep.episode_return),
            "success": ep.success, "length": len(ep), "episode_id": ep.episode_id,
        })
    # Units whose best transition matches the query as well as the top one does (for a one-hot
    # corridor cell: every unit that visited that cell), and the share of them that succeeded.
    best = scores[0] if scores else 0.0
    matching = [uid for score, uid in zip(scores, ids) if uid >= 0 and score >= best - 1e-4]
    outcomes = [buffer.episode(int(uid)).success for uid in matching]
    known = [bool(o) for o in outcomes if o is not None]
    return {
        "top": rows,
        "matching_units": len(matching),
        "matching_success_rate": (sum(known) / len(known)) if known else None,
    }


def run_demo(
    steps: int = 20_000,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    length: int = 14,
    p_right: float = 0.55,
    consolidate_steps: int = 300,
    embed_dim: int = 64,
    top_k: int = 3,
) -> dict[str, Any]:
    """Run the demo end to end and return its summary.

    Args:
        steps: Environment steps to record.
        out: Directory to save the memory to (default: a new temporary directory; the memory is
            written to ``out/memory`` there, or to ``out`` itself when given).
        seed: Seeds the environment, the policy, the buffer and the consolidator.
        length: Corridor length (cells); the episode budget is ``4 * length`` steps.
        p_right: Probability that the policy steps right (0.5 = uniform random).
        consolidate_steps: Consolidation steps.
        embed_dim: Key width.
        top_k: Units listed per retrieval query.

    Returns:
        A JSON-able dict: ``env``, ``recorded`` (steps, episodes, units, successes,
        success_rate), ``consolidation`` (``before``/``after`` quality figures and the loss),
        ``saved`` (path, bytes, reload checks), ``retrieval`` (per query: the observation's cell,
        the ``top`` units with score, return and success flag, ``matching_units``: how many units
        match the query as well as the best one, and ``matching_success_rate``: the share of
        those that reached the goal), ``timings`` (seconds per phase).

    Raises:
        ValidationError: A bad argument.
    """
    import gymnasium as gym

    from hippogym.envs import register_envs
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer
    from hippogym.replay.defaults import build_default_consolidator
    from hippogym.replay.settings import SemanticConfig
    from hippogym.wrappers import RecordEpisodes

    steps = _check_int("steps", steps, 1)
    seed = _check_int("seed", seed, 0)
    length = _check_int("length", length, 3)
    consolidate_steps = _check_int("consolidate_steps", consolidate_steps, 0)
    top_k = _check_int("top_k", top_k, 1)
    if not 0.0 <= float(p_right) <= 1.0:
        raise ValidationError("p_right", "a probability in [0, 1]", repr(p_right))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is several times faster than many here
    timings: dict[str, float] = {}
    try:
        register_envs()
        t0 = time.perf_counter()
        buffer = HippocampalReplayBuffer(
            MemoryStore(embed_dim=embed_dim, capacity=steps, seed=seed), semantic=SemanticConfig(top_k=top_k), seed=seed
        )
        env = RecordEpisodes(gym.make(ENV_ID, length=length), buffer)
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        episodes = 0
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(int(rng.random() < p_right))
            if terminated or truncated:
                episodes += 1
                env.reset()
        env.close()  # hands the last, unfinished episode to the buffer as a unit of its own
        timings["record_s"] = time.perf_counter() - t0
        outcomes = [ep.success for ep in buffer.memory.episodes()]
        successes = sum(1 for s in outcomes if s)
        recorded = {
            "steps": steps, "transitions": len(buffer), "episodes": episodes, "units": buffer.num_episodes,
            "successes": successes, "success_rate": successes / max(episodes, 1),
        }
        logger.info("recorded %d steps: %d episodes, %d successes", steps, episodes, successes)

        t0 = time.perf_counter()
        consolidation: dict[str, Any] = {"steps": consolidate_steps}
        if consolidate_steps and len(buffer) >= 2:
            buffer.consolidator = build_default_consolidator(buffer.encoder, seed, buffer.consolidator_kwargs, temperature=0.05)
            metrics = buffer.consolidate(steps=consolidate_steps, batch_size=128, report_quality=True)
            consolidation.update(
                before={k: metrics.get(f"before_{k}") for k in _QUALITY_KEYS},
                after={k: metrics.get(k) for k in _QUALITY_KEYS},
                loss_first=metrics["loss_first"], loss_last=metrics["loss_last"],
            )
        timings["consolidate_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        base = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="hippogym-demo-")) / "memory"
        saved: dict[str, Any] = {"path": str(base)}
        retriever = buffer
        if hasattr(buffer, "save") and hasattr(HippocampalReplayBuffer, "load"):
            path = Path(buffer.save(base))
            loaded = HippocampalReplayBuffer.load(path)
            same_keys = torch.equal(buffer.memory.keys, loaded.memory.keys)
            a, b = buffer.sample(32), loaded.sample(32)
            saved.update(
                path=str(path), bytes=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
                reloaded_transitions=len(loaded), same_keys=bool(same_keys),
                same_next_batch=bool(torch.equal(a.indices, b.indices) and torch.equal(a.observations, b.observations)),
            )
            retriever = loaded
            logger.info("saved to %s and reloaded (%d transitions)", path, len(loaded))
        else:  # pragma: no cover - save/load ship with hippogym; kept for partial installs
            saved["skipped"] = "HippocampalReplayBuffer.save/load are not available"
            logger.info("save/reload skipped: HippocampalReplayBuffer.save/load are not available")
        timings["save_reload_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        retrieval = {}
        for name, cell in (("start", 0), ("near_goal", length - 3)):
            query = np.zeros(length, dtype=np.float32)
            query[cell] = 1.0
            retrieval[name] = {"cell": cell, **_retrieval(retriever, query, top_k)}
        timings["retrieve_s"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return {
        "env": {"id": ENV_ID, "length": length, "max_steps": 4 * length, "p_right": float(p_right), "seed": seed},
        "recorded": recorded,
        "consolidation": consolidation,
        "saved": saved,
        "retrieval": retrieval,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_demo(summary: dict[str, Any]) -> str:
    """Render :func:`run_demo`'s summary as plain text (what ``hippogym demo`` prints)."""
    env, rec, cons, saved = summary["env"], summary["recorded"], summary["consolidation"], summary["saved"]
    lines = [(
        f"1. recorded {rec['steps']:,} steps of {env['id']} (length {env['length']}, "
        f"random policy with P(right)={env['p_right']:.2f}): {rec['episodes']} episodes, "
        f"{rec['successes']} reached the goal ({rec['success_rate']:.0%}), {rec['units']} units in memory"
    )]
    if "before" in cons:
        b, a = cons["before"], cons["after"]
        lines.append(f"2. consolidated {cons['steps']} steps (loss {cons['loss_first']:.3f} -> {cons['loss_last']:.3f})")
        lines.append(f"   reward alignment   {_fmt(b['reward_alignment'])} -> {_fmt(a['reward_alignment'])}")
        lines.append(
            f"   success precision  {_fmt(b['success_precision'])} -> {_fmt(a['success_precision'])}"
            f"   (base rate {_fmt(a['success_base_rate'])})"
        )
    else:
        lines.append("2. consolidation skipped")
    if "skipped" in saved:
        lines.append(f"3. save/reload skipped: {saved['skipped']}")
    else:
        exact = saved["same_keys"] and saved["same_next_batch"]
        lines.append(
            f"3. saved to {saved['path']} ({saved['bytes'] / 1e6:.2f} MB) and reloaded: "
            f"{saved['reloaded_transitions']:,} transitions, " + ("bit-exact" if exact else "NOT identical")
        )
    lines.append("4. what retrieval surfaces (reloaded memory):")
    for name, res in summary["retrieval"].items():
        rate = res["matching_success_rate"]
        lines.append(
            f"   query '{name}' (agent in cell {res['cell']}): {res['matching_units']} units match it best"
            + ("" if rate is None else f", {rate:.0%} of them reached the goal (all units: {rec['success_rate']:.0%})")
        )
        for rank, row in enumerate(res["top"], 1):
            success = {True: "success", False: "failure", None: "unknown"}[row["success"]]
            lines.append(
                f"     #{rank} unit {row['unit']:>4}  score {row['score']:+.3f}  return {row['return']:.1f}  "
                f"{success:<8} {row['length']} steps"
            )
    t = summary["timings"]
    lines.append("   (" + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()) + ")")
    return "\n".join(lines)
