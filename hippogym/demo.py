"""The end-to-end demo behind ``hippogym demo``: record, consolidate, save, reload, retrieve, learn.

Everything runs on the built-in ``hippogym/SparseCorridor-v0`` (no download):

1. **Record** ``steps`` environment steps of a random policy slightly biased to the right into a
   :class:`~hippogym.HippocampalReplayBuffer` through :class:`~hippogym.RecordEpisodes`; the
   corridor pays ``1.0`` only at its far end, so only some episodes succeed.
2. **Consolidate** the memory and measure its key space before and after
   (:func:`~hippogym.memory_quality`: ``reward_alignment``, ``success_precision`` against its base
   rate, ``retrieval_sharpness``).
3. **Save** the memory to a ``hippo_format`` directory, **reload** it and check that the reload
   is exact (same keys, same next batch).
4. **Retrieve**: for a query in every cell, the share of the retrieved units that reached the goal,
   against the share among units drawn uniformly, before and after consolidation; and the top
   units for a query at the start and one near the goal.
5. **Learn from the memory**, the part that shows what the memory is for: the same tabular
   Q-learner is trained twice on batches from this memory, once with one-step TD targets (what a
   plain replay buffer gives) and once with the stored returns-to-go as a lower bound of the
   target (hippogym's value memory, :meth:`~hippogym.HippocampalReplayBuffer.use_value_targets`:
   ``Q(s, a) >= G_t``, as in episodic-memory DQN variants and self-imitation). Both see the same
   number of batches; the demo reports the value error against the optimal values and whether the
   greedy policy reaches the goal, update by update.

On this corridor the observation is a one-hot cell, so every visit of a cell gets the same key
whatever the episode's outcome: retrieval ranks exact matches first (the most recent first), and
consolidation cannot separate successes from failures that share a cell. What moves is the
learner: a sparse reward travels back one cell per bootstrapped update with one-step TD, while the
stored returns carry it to every cell a successful episode visited in one update.

:func:`run_demo` returns all of it as a dict (and writes a PNG with both comparisons when
matplotlib is installed); the CLI prints it with a progress bar.
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

from hippogym.envs._validation import check_int
from hippogym.errors import ValidationError, describe

__all__ = ["ENV_ID", "format_demo", "run_demo"]

logger = logging.getLogger(__name__)

ENV_ID = "hippogym/SparseCorridor-v0"
_QUALITY_KEYS = ("reward_alignment", "success_precision", "success_base_rate", "effective_rank")


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


def _retrieval_by_cell(buffer: Any, length: int, k: int) -> dict[str, list[float | None]]:
    """Per cell: the share of the ``k`` units retrieved for it that reached the goal, and among all units."""
    cells = length - 1  # the last cell is the goal: never an observation the agent acts from
    # One query per cell, each on its own: a cell's stored keys are all equal, so the ranking is the
    # tie rule (most recent first), which a batched matrix product could perturb at rounding level.
    slots = torch.cat([
        buffer.retrieve(torch.eye(length)[cell], top_k=k, record_hits=False).slots for cell in range(cells)
    ])
    outcome = buffer.memory.unit_success[slots.clamp(min=0)]  # 1 success, 0 failure, -1 unknown
    counted = (slots >= 0) & (outcome >= 0)
    wins, seen = ((outcome == 1) & counted).sum(1), counted.sum(1)
    retrieved = [float(w) / float(n) if n else None for w, n in zip(wins.tolist(), seen.tolist())]
    return {"retrieved": retrieved, "uniform": [buffer.stats()["success_rate"]] * cells}


def _greedy_success(q: np.ndarray, env: Any) -> bool:
    obs, _ = env.reset(seed=0)
    while True:
        obs, reward, terminated, truncated, _ = env.step(int(np.argmax(q[int(np.argmax(obs))])))
        if terminated or truncated:
            return bool(reward > 0)


def _learn_from_memory(
    buffer: Any, env: Any, length: int, gamma: float, updates: int, batch_size: int, bar: Any
) -> dict[str, list[float]]:
    """Train two tabular Q-learners on the same batches: one-step TD, and TD with the stored return as a floor."""
    cells = np.arange(length - 1)
    v_star = gamma ** (length - 2 - cells)  # reward 1 on entering the last cell, length - 1 - c steps away
    tables = {"td": np.zeros((length, 2)), "episodic": np.zeros((length, 2))}
    curves: dict[str, list[float]] = {f"{n}_{m}": [] for n in tables for m in ("value_error", "greedy_success")}

    def record() -> None:
        for name, q in tables.items():
            curves[f"{name}_value_error"].append(float(np.abs(q[cells].max(1) - v_star).mean()))
            curves[f"{name}_greedy_success"].append(float(_greedy_success(q, env)))

    record()
    for _ in range(updates):
        batch = buffer.sample(batch_size)
        s = batch.observations.numpy().argmax(1)
        a = batch.actions.numpy().astype(np.int64).reshape(-1)
        s2 = batch.next_observations.numpy().argmax(1)
        r, done = batch.rewards.numpy(), batch.terminated.numpy().astype(np.float64)
        disc = batch.discounts.numpy()
        tail = batch.tail_observations.numpy().argmax(1)
        for name, q in tables.items():
            target = r + disc * (1.0 - done) * q[s2].max(1)
            if name == "episodic":  # the stored return-to-go, completed by the current values where partial
                target = np.maximum(target, batch.returns.numpy() + batch.return_discounts.numpy() * q[tail].max(1))
            delta, count = np.zeros_like(q), np.zeros_like(q)
            np.add.at(delta, (s, a), target - q[s, a])
            np.add.at(count, (s, a), 1.0)
            q += 0.5 * delta / np.maximum(count, 1.0)
        record()
        bar.update(1)
    return curves


def _first(curve: list[float], ok: Any) -> int | None:
    return next((i for i, v in enumerate(curve) if ok(v)), None)


def _plot(summary: dict[str, Any], path: Path) -> str | None:
    """Write the two comparisons as a PNG; ``None`` (and why, logged) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no plot (pip install 'hippogym[viz]')")
        return None
    learn, by_cell = summary["learning"], summary["retrieval_by_cell"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x = list(range(len(learn["td_value_error"])))
    left.plot(x, learn["td_value_error"], label="one-step TD (plain replay)", color="tab:gray")
    left.plot(x, learn["episodic_value_error"], label="+ stored returns (value memory)", color="tab:blue")
    left.set_xlabel("updates (batches of the same memory)")
    left.set_ylabel("mean |V - V*| over cells")
    left.set_title("Learning from the memory")
    left.legend()
    cells = list(range(len(by_cell["after"]["retrieved"])))
    right.plot(cells, [v if v is not None else np.nan for v in by_cell["before"]["retrieved"]], "o--",
               label="retrieved, before consolidation", color="tab:orange")
    right.plot(cells, [v if v is not None else np.nan for v in by_cell["after"]["retrieved"]], "s-",
               label="retrieved, after consolidation", color="tab:blue", alpha=0.7)
    right.plot(cells, [v if v is not None else np.nan for v in by_cell["after"]["uniform"]], ":",
               label="uniform draws (all units)", color="tab:gray")
    right.set_xlabel("query cell")
    right.set_ylabel("share of units that reached the goal")
    right.set_title("What retrieval surfaces")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


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
    updates: int = 40,
    gamma: float = 0.95,
    plot: bool = True,
    progress: bool = False,
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
        updates: Batches (of 64) each tabular learner is trained on.
        gamma: Discount of the learners and of the stored returns.
        plot: Write ``<memory>_demo.png`` beside the memory (needs matplotlib).
        progress: Show a progress bar (recording, then learning).

    Returns:
        A JSON-able dict: ``env``, ``recorded`` (steps, episodes, units, successes,
        success_rate), ``consolidation`` (``before``/``after`` quality figures and the loss),
        ``saved`` (path, bytes, reload checks), ``retrieval`` (per query: the observation's cell,
        the ``top`` units with score, return and success flag, ``matching_units``: how many units
        match the query as well as the best one, and ``matching_success_rate``: the share of
        those that reached the goal), ``retrieval_by_cell`` (``before``/``after`` consolidation:
        per cell, the share of the retrieved units that reached the goal, and among all units),
        ``learning`` (per update: value error and greedy success of the one-step TD learner and of
        the learner with stored returns; the first update at which each is greedy-successful and
        within 0.05 of the optimal values), ``plot`` (the PNG's path, or ``None``),
        ``timings`` (seconds per phase).

    Raises:
        ValidationError: A bad argument.
    """
    import gymnasium as gym

    from hippogym.envs import register_envs
    from hippogym.memory.store import MemoryStore
    from hippogym.progress import progress_bar
    from hippogym.replay.buffer import HippocampalReplayBuffer
    from hippogym.replay.defaults import build_default_consolidator
    from hippogym.replay.settings import SemanticConfig
    from hippogym.wrappers import RecordEpisodes

    steps = check_int("steps", steps, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    length = check_int("length", length, minimum=3)
    consolidate_steps = check_int("consolidate_steps", consolidate_steps, minimum=0)
    top_k = check_int("top_k", top_k, minimum=1)
    updates = check_int("updates", updates, minimum=1)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 < float(gamma) < 1.0:
        raise ValidationError("gamma", "a float in (0, 1)", describe(gamma))
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
        bar = progress_bar(total=steps, desc="record", unit="step", enabled=progress)
        for i in range(steps):
            _, _, terminated, truncated, _ = env.step(int(rng.random() < p_right))
            if terminated or truncated:
                episodes += 1
                env.reset()
            if i % 500 == 499 or i == steps - 1:
                bar.update(500 if i % 500 == 499 else steps % 500)
        bar.close()
        env.close()  # hands the last, unfinished episode to the buffer as a unit of its own
        timings["record_s"] = time.perf_counter() - t0
        outcomes = [ep.success for ep in buffer.memory.episodes()]
        successes = sum(1 for s in outcomes if s)
        recorded = {
            "steps": steps, "transitions": len(buffer), "episodes": episodes, "units": buffer.num_episodes,
            "successes": successes, "success_rate": successes / max(episodes, 1),
        }
        logger.info("recorded %d steps: %d episodes, %d successes", steps, episodes, successes)

        by_cell = {"before": _retrieval_by_cell(buffer, length, 20)}
        t0 = time.perf_counter()
        consolidation: dict[str, Any] = {"steps": consolidate_steps}
        if consolidate_steps and len(buffer) >= 2:
            # Every key re-encoded: with the default incremental refresh a memory above 16,384
            # transitions would mix two encoders' keys, and retrieval would then rank by key age.
            buffer.consolidator = build_default_consolidator(
                buffer.encoder, seed, buffer.consolidator_kwargs, temperature=0.05, refresh="full"
            )
            metrics = buffer.consolidate(steps=consolidate_steps, batch_size=128, report_quality=True)
            consolidation.update(
                before={k: metrics.get(f"before_{k}") for k in _QUALITY_KEYS},
                after={k: metrics.get(k) for k in _QUALITY_KEYS},
                loss_first=metrics["loss_first"], loss_last=metrics["loss_last"],
            )
        timings["consolidate_s"] = time.perf_counter() - t0
        by_cell["after"] = _retrieval_by_cell(buffer, length, 20)

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

        t0 = time.perf_counter()
        retriever.use_value_targets(gamma=gamma, n_steps=1, returns=True)
        bar = progress_bar(total=updates, desc="learn", unit="batch", enabled=progress)
        learning: dict[str, Any] = _learn_from_memory(
            retriever, gym.make(ENV_ID, length=length), length, float(gamma), updates, 64, bar
        )
        bar.close()
        for name in ("td", "episodic"):
            errors, wins = learning[f"{name}_value_error"], learning[f"{name}_greedy_success"]
            learning[f"{name}_first_success"] = _first(wins, lambda v: v > 0)
            learning[f"{name}_first_within_0.05"] = _first(errors, lambda v: v <= 0.05)
        timings["learn_s"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    summary = {
        "env": {"id": ENV_ID, "length": length, "max_steps": 4 * length, "p_right": float(p_right), "seed": seed},
        "recorded": recorded,
        "consolidation": consolidation,
        "saved": saved,
        "retrieval": retrieval,
        "retrieval_by_cell": by_cell,
        "learning": {"updates": updates, "batch_size": 64, "gamma": float(gamma), **learning},
        "plot": None,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    if plot:
        summary["plot"] = _plot(summary, base.parent / f"{base.name}_demo.png")
    return summary


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
    by_cell = summary["retrieval_by_cell"]
    after, before = by_cell["after"]["retrieved"], by_cell["before"]["retrieved"]
    base = by_cell["after"]["uniform"][0]
    lines.append(
        "   per query cell, share of the 20 retrieved units that reached the goal"
        + ("" if base is None else f" (uniform draws: {base:.0%})") + ":"
    )
    lines.append("     after consolidation  " + " ".join("  - " if v is None else f"{v:4.0%}" for v in after))
    same = before == after
    lines.append(
        "     before consolidation " + ("(the same: one-hot cells give every visit one key, so consolidation "
                                        "cannot reorder exact matches)" if same else
                                        " ".join("  - " if v is None else f"{v:4.0%}" for v in before))
    )
    learn = summary["learning"]
    lines.append(
        f"5. learning from the memory: the same tabular Q-learner, {learn['updates']} batches of "
        f"{learn['batch_size']} (gamma {learn['gamma']:g}), with and without the stored returns"
    )

    def when(value: Any) -> str:
        return "never" if value is None else f"after {value} updates"

    for name, label in (("td", "one-step TD (plain replay)   "), ("episodic", "+ stored returns (value memory)")):
        errors = learn[f"{name}_value_error"]
        mid = errors[min(len(errors) - 1, 10)]
        lines.append(
            f"   {label}: greedy policy reaches the goal {when(learn[f'{name}_first_success'])}, "
            f"values within 0.05 of optimal {when(learn[f'{name}_first_within_0.05'])} "
            f"(error at update 10: {mid:.3f})"
        )
    if summary.get("plot"):
        lines.append(f"   plot: {summary['plot']}")
    t = summary["timings"]
    lines.append("   (" + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()) + ")")
    return "\n".join(lines)
