"""A wake/sleep training loop for agents that do not use Stable-Baselines3.

With SB3, :class:`~hippogym.integrations.sb3.HippoReplayBuffer` and
:class:`~hippogym.integrations.sb3.HippoCallback` already record, sample and consolidate. Any other
learner only needs two methods (:class:`Agent`): ``act(observation) -> action`` and
``update(batch)``. :class:`WakeSleepTrainer` then runs the loop every such agent writes by hand:

* **wake**: step the environment with the agent's actions, recording every transition into the
  buffer through :class:`~hippogym.RecordEpisodes` (segmented as the segmenter says; the step that
  follows an episode's end is a reset, never a transition);
* **learn**: every ``train_every`` steps past ``learning_starts``, ``gradient_steps`` batches drawn
  with the current observation as the semantic query, each passed to ``agent.update``;
* **sleep**: consolidate the memory on a schedule, in the foreground or on a worker thread
  (``background=True``; see :mod:`hippogym.consolidation.background`).

Example:
    >>> import gymnasium as gym, numpy as np, hippogym
    >>> from hippogym import HippocampalReplayBuffer, MemoryStore
    >>> from hippogym.training import WakeSleepTrainer
    >>> class Random:
    ...     def act(self, obs): return np.random.randint(2)
    ...     def update(self, batch): return {"n": len(batch.rewards)}
    >>> buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=10_000, seed=0), seed=0)
    >>> env = gym.make("hippogym/SparseCorridor-v0", length=5, max_episode_steps=20)
    >>> log = WakeSleepTrainer(Random(), buffer, learning_starts=50, consolidate_every=100).train(env, 300)
    >>> log.steps, log.updates > 0, len(log.consolidations)
    (300, True, 3)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym

from hippogym.envs._validation import check_int
from hippogym.errors import ValidationError, describe
from hippogym.progress import progress_bar
from hippogym.replay.buffer import HippocampalReplayBuffer
from hippogym.wrappers.record import RecordEpisodes

__all__ = ["SCHEDULES", "Agent", "SleepSchedule", "TrainingLog", "WakeSleepTrainer"]

logger = logging.getLogger(__name__)

#: Consolidation schedules: ``periodic`` (``consolidate_steps`` every ``consolidate_every`` env
#: steps), ``interleaved`` (a tenth of both: the same sleep in smaller, more frequent pieces),
#: ``adaptive`` (checked every ``consolidate_every // 2`` steps: sleep when the memory's
#: ``reward_alignment`` fell more than 0.05 below its mean over the previous checks, or after
#: ``consolidate_every`` steps without sleep).
SCHEDULES = ("periodic", "interleaved", "adaptive")


class SleepSchedule:
    """When to consolidate, counted in ticks (env steps, or episodes: whatever the caller ticks).

    Args:
        every: Ticks between consolidations (``0``: never).
        steps: Consolidation steps of a ``periodic`` call.
        schedule: One of :data:`SCHEDULES`.

    Example:
        >>> s = SleepSchedule(every=4, steps=50, schedule="interleaved")
        >>> s.steps_for_call, s.ticks_between_calls
        (5, 1)
    """

    def __init__(self, every: int, steps: int, schedule: str = "periodic") -> None:
        if schedule not in SCHEDULES:
            raise ValidationError("schedule", f"one of {list(SCHEDULES)}", repr(schedule))
        self.every, self.steps = check_int("every", every, minimum=0), check_int("steps", steps, minimum=1)
        self.schedule = schedule
        self.since = 0
        self._alignment: list[float] = []

    @property
    def steps_for_call(self) -> int:
        """Consolidation steps of one call (a tenth, at least 1, when ``interleaved``)."""
        return max(1, self.steps // 10) if self.schedule == "interleaved" else self.steps

    @property
    def ticks_between_calls(self) -> int:
        """Ticks between calls (a tenth of ``every``, at least 1, when ``interleaved``)."""
        return max(1, self.every // 10) if self.schedule == "interleaved" else self.every

    def tick(self, n: int = 1) -> None:
        """Count ``n`` ticks (env steps or finished episodes)."""
        self.since += n

    def due(self, buffer: HippocampalReplayBuffer) -> int:
        """Consolidation steps to run now (``0``: not now); resets the count when it says to run."""
        if self.every == 0 or buffer.is_empty or len(buffer) < 2:
            return 0
        if self.schedule != "adaptive":
            run = self.since >= self.ticks_between_calls
        else:
            half = max(1, self.every // 2)
            if self.since < half or self.since % half:
                return 0
            from hippogym.consolidation.quality import memory_quality

            quality = memory_quality(buffer.memory, int(buffer.encoder.version))
            alignment = float(quality.get("reward_alignment", 0.0))
            history, self._alignment = self._alignment[-4:], self._alignment[-4:] + [alignment]
            dropped = len(history) >= 2 and alignment < sum(history) / len(history) - 0.05
            run = dropped or self.since >= self.every
        if not run:
            return 0
        self.since = 0
        return self.steps_for_call


@runtime_checkable
class Agent(Protocol):
    """What :class:`WakeSleepTrainer` needs from a learner."""

    def act(self, observation: Any) -> Any:
        """The action to take from ``observation`` (exploration included)."""

    def update(self, batch: Any) -> Any:
        """One learning step on a :class:`~hippogym.ReplayBatch`; may return a dict of metrics."""


@dataclass
class TrainingLog:
    """What happened during :meth:`WakeSleepTrainer.train`.

    Attributes:
        steps: Environment steps taken.
        updates: ``agent.update`` calls.
        episode_returns: Undiscounted return of each finished episode, in order.
        episode_lengths: Steps of each finished episode.
        consolidations: The metrics of each consolidation, with the env ``step`` it ran at.
        update_metrics: The last dict ``agent.update`` returned, if any.
    """

    steps: int = 0
    updates: int = 0
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    consolidations: list[dict[str, Any]] = field(default_factory=list)
    update_metrics: dict[str, Any] = field(default_factory=dict)


class WakeSleepTrainer:
    """Alternate acting and learning (wake) with consolidation of the memory (sleep).

    Args:
        agent: Any object with ``act(observation)`` and ``update(batch)`` (:class:`Agent`).
        buffer: The memory the transitions go to and batches come from.
        segmenter: How episodes are cut into units (default: whole episodes).
        batch_size: Transitions per ``update``.
        learning_starts: Env steps before the first update.
        train_every: Env steps between updates.
        gradient_steps: Batches (``update`` calls) per update.
        consolidate_every: Env steps between consolidations (``0``: never).
        consolidate_steps: Consolidation steps per call.
        consolidate_batch: Anchors per consolidation step.
        schedule: One of :data:`SCHEDULES`.
        background: Train consolidation on a worker thread; its result is installed at the first
            step after it finishes.
        query: Pass the current observation as the semantic query (``False``: uniform draws only,
            whatever the mixture).
        tb_writer: A ``SummaryWriter`` for the episode returns and the consolidation metrics.

    Raises:
        ValidationError: A bad argument (the message names it).
    """

    def __init__(
        self,
        agent: Any,
        buffer: HippocampalReplayBuffer,
        *,
        segmenter: Any = None,
        batch_size: int = 64,
        learning_starts: int = 1000,
        train_every: int = 1,
        gradient_steps: int = 1,
        consolidate_every: int = 1000,
        consolidate_steps: int = 50,
        consolidate_batch: int = 64,
        schedule: str = "periodic",
        background: bool = False,
        query: bool = True,
        tb_writer: Any = None,
    ) -> None:
        if not isinstance(agent, Agent):
            raise ValidationError("agent", "an object with act(observation) and update(batch)", describe(agent))
        if not isinstance(buffer, HippocampalReplayBuffer):
            raise ValidationError("buffer", "a HippocampalReplayBuffer", describe(buffer))
        if schedule not in SCHEDULES:
            raise ValidationError("schedule", f"one of {list(SCHEDULES)}", repr(schedule))
        self.agent, self.buffer, self.segmenter = agent, buffer, segmenter
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.learning_starts = check_int("learning_starts", learning_starts, minimum=0)
        self.train_every = check_int("train_every", train_every, minimum=1)
        self.gradient_steps = check_int("gradient_steps", gradient_steps, minimum=1)
        self.consolidate_every = check_int("consolidate_every", consolidate_every, minimum=0)
        self.consolidate_steps = check_int("consolidate_steps", consolidate_steps, minimum=1)
        self.consolidate_batch = check_int("consolidate_batch", consolidate_batch, minimum=2)
        self.schedule, self.background, self.query = schedule, bool(background), bool(query)
        self.tb_writer = tb_writer
        self.sleep_schedule = SleepSchedule(self.consolidate_every, self.consolidate_steps, schedule)

    def _sleep(self, step: int, log: TrainingLog) -> None:
        if self.background:
            done = self.buffer.apply_consolidation()
            if done is not None:
                self._record_sleep(done, step, log)
        steps = self.sleep_schedule.due(self.buffer)
        if steps == 0:
            return
        if self.background:
            if not self.buffer.consolidation_pending:  # one job at a time; a busy worker skips this turn
                self.buffer.consolidate(steps, self.consolidate_batch, background=True)
            return
        self._record_sleep(self.buffer.consolidate(steps, self.consolidate_batch, tb_writer=self.tb_writer), step, log)

    def _record_sleep(self, metrics: dict[str, Any], step: int, log: TrainingLog) -> None:
        metrics = dict(metrics, step=step)
        log.consolidations.append(metrics)
        logger.info("step %d: consolidated %d steps, loss %.4f", step, metrics["steps"], metrics["loss"])

    # ------------------------------------------------------------------ loop
    def train(self, env: gym.Env, total_steps: int, *, progress: bool = False) -> TrainingLog:
        """Run ``total_steps`` environment steps of wake and sleep.

        Args:
            env: A Gymnasium environment (wrapped in :class:`~hippogym.RecordEpisodes` here unless
                it already records into this buffer).
            total_steps: Environment steps.
            progress: Show a progress bar with the mean return of the last 20 episodes.

        Returns:
            A :class:`TrainingLog`. A background consolidation still running at the end is
            waited for and applied, so the buffer's encoder is final when this returns.
        """
        check_int("total_steps", total_steps, minimum=1)
        recorder = env if isinstance(env, RecordEpisodes) and env.buffer is self.buffer else (
            RecordEpisodes(env, self.buffer, segmenter=self.segmenter)
        )
        log = TrainingLog()
        obs, _ = recorder.reset()
        ep_return, ep_len = 0.0, 0
        bar = progress_bar(total=total_steps, desc="wake/sleep", unit="step", enabled=progress)
        for step in range(1, total_steps + 1):
            action = self.agent.act(obs)
            obs, reward, terminated, truncated, _ = recorder.step(action)
            ep_return += float(reward)
            ep_len += 1
            log.steps = step
            self.sleep_schedule.tick()
            if terminated or truncated:
                log.episode_returns.append(ep_return)
                log.episode_lengths.append(ep_len)
                if self.tb_writer is not None:
                    self.tb_writer.add_scalar("hippo/train/episode_return", ep_return, step)
                ep_return, ep_len = 0.0, 0
                obs, _ = recorder.reset()
            if step > self.learning_starts and step % self.train_every == 0 and not self.buffer.is_empty:
                for _ in range(self.gradient_steps):
                    batch = self.buffer.sample(self.batch_size, query_state=obs if self.query else None)
                    out = self.agent.update(batch)
                    log.updates += 1
                    if isinstance(out, dict):
                        log.update_metrics = out
            self._sleep(step, log)
            bar.update(1)
            if progress and log.episode_returns and step % 100 == 0:
                recent = log.episode_returns[-20:]
                bar.set_postfix_str(f"return {sum(recent) / len(recent):.3f}")
        bar.close()
        if self.buffer.consolidation_pending:
            self._record_sleep(self.buffer.apply_consolidation(wait=True), log.steps, log)
        if log.episode_returns:
            logger.info(
                "trained %d steps, %d episodes, mean return %.3f", log.steps, len(log.episode_returns),
                sum(log.episode_returns) / len(log.episode_returns),
            )
        return log
