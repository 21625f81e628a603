"""Stable-Baselines3 integration: the hippocampal memory as an SB3 replay buffer.

Two ways in:

* :class:`HippoReplayBuffer`, a real subclass of SB3's ``ReplayBuffer`` that SB3 builds itself::

      from stable_baselines3 import DQN
      from hippogym.integrations.sb3 import HippoReplayBuffer

      model = DQN("MlpPolicy", env, replay_buffer_class=HippoReplayBuffer,
                  replay_buffer_kwargs=dict(mixture_ratio=0.5, consolidate_every=5_000))

  It works the same with SAC, TD3 and any off-policy algorithm that calls
  ``replay_buffer.add(...)`` / ``replay_buffer.sample(batch_size, env)``.
* :class:`SB3ReplayBufferWrapper`, the same ingestion and sampling around an existing
  :class:`~hippogym.HippocampalReplayBuffer` for a hand-written training loop.

**How transitions reach the memory.** Every transition of env ``i`` goes to the segmenter as
``stream=i`` (the default is :class:`~hippogym.segmentation.TerminalSegmenter`: one unit per
environment episode). A transition becomes sampleable once the segmenter completes its segment,
so whole episodes are the units that retrieval, eviction and consolidation work on.

**Partial segments (the empty memory at ``learning_starts``).** SB3 starts sampling after
``learning_starts`` steps whatever the episode length, so the memory may still be empty then (long
first episodes: Pendulum's 200 steps vs SAC's ``learning_starts=100``). Sampling therefore never
fails on data that has been received: when the memory holds nothing, ``sample`` *flushes* the
in-progress segment of every stream (``segmenter.flush(stream)``) and stores each as a unit of its
own. A flushed segment ends without ``terminated``/``truncated`` and keeps its real next
observation, so its last transition bootstraps correctly; the segmenter forgets what it flushed and
the rest of that environment episode becomes the next unit(s), so no transition is ever stored
twice (the episode is just split in two units that share its ``episode_id``). Flushing happens only
when the memory is empty; afterwards a transition waits at most one segment before being
sampleable (for a bounded lag, pass a ``FixedWindowSegmenter``). The same mechanism bounds unit
size: a stream whose pending segment reaches ``max_unit_length`` transitions (default a quarter of
the capacity) is flushed, so one endless episode can neither exceed the capacity nor dominate
eviction.

**Flags.** With ``handle_timeout_termination=True`` (SB3's default) a ``done`` whose info has
``TimeLimit.truncated`` is stored as ``truncated`` (bootstrapped), any other ``done`` as
``terminated``; with ``False`` every ``done`` is ``terminated`` (SB3's behaviour then). Sampled
``dones`` are ``terminated``. SB3 already replaces the next observation of a ``done`` env with its
``terminal_observation`` before calling ``add``; the adapter stores what it is given.

**The query.** By default semantic draws recall around the most recent next-observation of each
env (one batched query of ``n_envs`` rows); pass ``query=callable(buffer) -> observations`` to
customise it, or ``query=None`` for uniform/prioritised draws only.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Union

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from hippogym.episode import Episode
from hippogym.errors import (
    EmptyMemoryError,
    HippoError,
    MissingDependencyError,
    ValidationError,
    describe,
)
from hippogym.memory.store import MemoryStore
from hippogym.replay.batch import ReplayBatch
from hippogym.replay.buffer import HippocampalReplayBuffer
from hippogym.replay.hindsight import HindsightRelabeler
from hippogym.replay.ingest import EpisodeIngestor
from hippogym.replay.schedules import MixtureSchedule
from hippogym.replay.settings import (
    FeatureConfig,
    SemanticConfig,
    coerce_features,
    coerce_semantic,
    legacy_sampler_spec,
    pop_legacy,
)
from hippogym.segmentation import Segmenter
from hippogym.types import DEFAULT_EMBED_DIM, DEFAULT_KEY_DTYPE, ObservationWindow

try:
    from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.type_aliases import (
        DictReplayBufferSamples,
        ReplayBufferSamples,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("stable-baselines3", "sb3", "hippogym.integrations.sb3") from exc

__all__ = [
    "HippoCallback",
    "HippoDictReplayBufferSamples",
    "HippoReplayBuffer",
    "HippoReplayBufferSamples",
    "SB3ReplayBufferWrapper",
]

logger = logging.getLogger(__name__)

#: What :class:`HippoReplayBuffer` recalls around: ``"recent"``, ``None`` or ``callable(buffer)``.
QuerySpec = Union[str, Callable[["HippoReplayBuffer"], Any], None]
#: A batch of observations as numpy: one array, or one per key of a Dict space.
NumpyObs = Union[np.ndarray, dict[str, np.ndarray]]

_SUPPORTED_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class HippoReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields, in SB3's order, plus the memory's return fields.

    An algorithm written for ``ReplayBufferSamples`` reads the first six fields unchanged
    (``discounts`` is ``gamma^m`` for ``m``-step targets, ``None`` for one-step ones, as in SB3).

    Attributes:
        returns: ``[B, 1]`` discounted return-to-go inside the stored unit.
        return_discounts: ``[B, 1]`` discount of the missing tail (0 when the unit terminated).
        tail_observations: Observations the tail starts from:
            ``returns + return_discounts * V(tail_observations)`` is the Monte-Carlo return.
    """

    observations: Tensor
    actions: Tensor
    next_observations: Tensor
    dones: Tensor
    rewards: Tensor
    discounts: Tensor | None = None
    returns: Tensor | None = None
    return_discounts: Tensor | None = None
    tail_observations: Tensor | None = None


class HippoDictReplayBufferSamples(NamedTuple):
    """:class:`HippoReplayBufferSamples` for Dict observation spaces."""

    observations: dict[str, Tensor]
    actions: Tensor
    next_observations: dict[str, Tensor]
    dones: Tensor
    rewards: Tensor
    discounts: Tensor | None = None
    returns: Tensor | None = None
    return_discounts: Tensor | None = None
    tail_observations: dict[str, Tensor] | None = None


def _reward_function(env: Any) -> Callable[..., Any]:
    """``compute_reward(achieved, desired, infos)`` of a goal env: a VecEnv, a gym env or a callable."""
    if env is None:
        raise ValidationError("env", "an env with compute_reward (or pass compute_reward=)", "None")
    if callable(getattr(env, "env_method", None)):  # a VecEnv: ask its first env, as HerReplayBuffer does
        def vec_reward(achieved: Any, desired: Any, infos: Any) -> Any:
            return env.env_method("compute_reward", achieved, desired, infos, indices=[0])[0]

        return vec_reward
    for target in (getattr(env, "unwrapped", None), env):
        fn = getattr(target, "compute_reward", None)
        if callable(fn):
            return fn
    raise ValidationError("env", "an env with a compute_reward(achieved_goal, desired_goal, infos) method", describe(env))


# ---------------------------------------------------------------------- helpers
def _default_segmenter() -> Any:
    from hippogym.segmentation import TerminalSegmenter

    return TerminalSegmenter()


def _batch_rows(value: Any, n: int, name: str, dtype: Any = None) -> np.ndarray:
    """``value`` as a numpy array (a view where possible) with a leading axis of ``n`` rows."""
    if type(value) is np.ndarray and (dtype is None or value.dtype == dtype) and value.ndim > 1 and value.shape[0] == n:
        return value  # the common case (SB3's arrays): no conversion
    arr = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=dtype)
    if arr.ndim == 1 and arr.shape[0] == n:
        arr = arr.reshape(n, 1)  # scalar observations (Discrete spaces)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValidationError(name, f"an array with a leading axis of n_envs={n} rows", describe(arr))
    return arr


def _one_env(value: Any) -> Any:
    """One env's unbatched value as a batch of one row (a leading axis of 1 added when missing).

    With ``n_envs == 1`` the seed's API took single-env arrays (``obs`` of shape ``obs_shape``); a
    leading axis that is already 1 is read as the batch axis, as SB3 passes it.
    """
    if type(value) is np.ndarray:  # the common case first (isinstance on Mapping is slow)
        arr = value
    elif isinstance(value, Mapping):
        return {k: _one_env(v) for k, v in value.items()}
    else:
        arr = value if isinstance(value, Tensor) else np.asarray(value)
    if arr.ndim == 0 or arr.shape[0] != 1:
        return arr[None]
    return arr


def _check_finite(value: NumpyObs, name: str) -> None:
    """Refuse NaN/inf in float observations (before anything is stored)."""
    if type(value) is not np.ndarray and isinstance(value, Mapping):
        for k, v in value.items():
            _check_finite(v, f"{name}[{k!r}]")
        return
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValidationError(name, "finite values", f"{int((~np.isfinite(value)).sum())} NaN/inf entries")


def _check_castable(value: Any, dtype: Any, name: str) -> None:
    """Refuse observations whose dtype cannot become the space's without losing their kind.

    ``float64 -> float32``, ``int -> float`` and ``int64 -> uint8`` are casts SB3 makes too;
    ``float -> uint8`` (an image space fed normalised floats) would silently truncate, so it is
    an error naming the field.
    """
    if dtype is None:
        return
    have = value.dtype if isinstance(value, np.ndarray) else None
    want = np.dtype(dtype)
    if have is not None and ((have.kind == "f" and want.kind in "iub") or (have.kind == "c" and want.kind != "c")):
        raise ValidationError(name, f"values of the observation space's dtype {want}", f"dtype {have}")


def _batch_obs(value: Any, n: int, name: str, dtypes: Mapping[str, Any] | Any = None) -> NumpyObs:
    if type(value) is not np.ndarray and isinstance(value, Mapping):
        if not isinstance(dtypes, Mapping):
            dtypes = {}
        for k, v in value.items():
            _check_castable(v, dtypes.get(k), f"{name}[{k!r}]")
        return {k: _batch_rows(v, n, f"{name}[{k!r}]", dtypes.get(k)) for k, v in value.items()}
    dtype = None if isinstance(dtypes, Mapping) else dtypes
    _check_castable(value, dtype, name)
    return _batch_rows(value, n, name, dtype)


def _row(obs: NumpyObs, i: int) -> NumpyObs:
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def _copy_obs(obs: NumpyObs) -> NumpyObs:
    if isinstance(obs, dict):
        return {k: v.copy() for k, v in obs.items()}
    return obs.copy()


def _to_torch(obs: NumpyObs) -> Tensor | dict[str, Tensor]:
    if isinstance(obs, dict):
        return {k: torch.from_numpy(v) for k, v in obs.items()}
    return torch.from_numpy(obs)


def _to_numpy(obs: Tensor | dict[str, Tensor]) -> NumpyObs:
    if isinstance(obs, dict):
        return {k: v.cpu().numpy() for k, v in obs.items()}
    return obs.cpu().numpy()


def _move(obs: Tensor | dict[str, Tensor], device: torch.device) -> Tensor | dict[str, Tensor]:
    if isinstance(obs, dict):
        return {k: v.to(device) for k, v in obs.items()}
    return obs.to(device)


def _from_normalized(obs: Any) -> Tensor | dict[str, Tensor]:
    """Normalised numpy observations back to torch (float64 from the running stats -> float32)."""

    def one(a: Any) -> Tensor:
        a = np.asarray(a)
        return torch.from_numpy(a.astype(np.float32) if a.dtype == np.float64 else np.ascontiguousarray(a))

    if isinstance(obs, Mapping):
        return {k: one(v) for k, v in obs.items()}
    return one(obs)


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (bool, int, float, np.integer, np.floating)) or isinstance(value, Tensor) and value.numel() == 1:
            out[key] = float(value)
    return out


# ---------------------------------------------------------------------- adapter
class SB3ReplayBufferWrapper:
    """SB3-style ``add``/``sample`` around a :class:`~hippogym.HippocampalReplayBuffer`.

    For a hand-written training loop that wants SB3's calling convention and
    ``ReplayBufferSamples`` batches. :class:`HippoReplayBuffer` is built on it.

    Args:
        buffer: The hippocampal buffer that stores the completed segments.
        segmenter: Cuts each env's stream into units (``add(..., stream=i)``, ``flush``,
            ``reset``). Default: a new :class:`~hippogym.segmentation.TerminalSegmenter`.
        n_envs: Number of parallel environments (= streams).
        device: Device of the returned samples.
        handle_timeout_termination: Store a ``done`` whose info has ``TimeLimit.truncated`` as
            truncated (bootstrapped) rather than terminated.
        consolidate_every: Consolidate the memory every this many transitions received (summed
            over envs, like SB3's ``num_timesteps``); ``0`` = never.
        consolidate_steps: Encoder training steps per consolidation.
        consolidate_batch_size: Batch size of those steps.
        max_unit_length: Flush a stream whose pending segment reaches this many transitions
            (default: a quarter of the memory's capacity).
        action_dtype: Cast actions to this numpy dtype before storing (default: as given).
        scalar_actions: Store one scalar action per step (Discrete spaces: the project-wide
            convention), instead of ``[action_dim]`` rows; samples are ``[B, 1]`` either way.
        obs_dtype: Cast observations to this numpy dtype (or a dict of them per key).

    Raises:
        ValidationError: Bad argument.

    Example:
        >>> from hippogym import HippocampalReplayBuffer, MemoryStore
        >>> from hippogym.integrations.sb3 import SB3ReplayBufferWrapper
        >>> rb = SB3ReplayBufferWrapper(HippocampalReplayBuffer(MemoryStore(capacity=10_000, seed=0), seed=0), n_envs=2)
        >>> # rb.add(obs, next_obs, action, reward, done, infos); rb.sample(256, query_state=obs)
    """

    def __init__(
        self,
        buffer: HippocampalReplayBuffer,
        segmenter: Any = None,
        n_envs: int = 1,
        device: str | torch.device = "cpu",
        *,
        handle_timeout_termination: bool = True,
        consolidate_every: int = 0,
        consolidate_steps: int = 50,
        consolidate_batch_size: int = 64,
        max_unit_length: int | None = None,
        action_dtype: Any = None,
        obs_dtype: Any = None,
        scalar_actions: bool = False,
    ) -> None:
        if not isinstance(buffer, HippocampalReplayBuffer):
            raise ValidationError("buffer", "a hippogym.HippocampalReplayBuffer", describe(buffer))
        if not isinstance(n_envs, (int, np.integer)) or isinstance(n_envs, bool) or n_envs < 1:
            raise ValidationError("n_envs", "an int >= 1", describe(n_envs))
        for name, value, low in (
            ("consolidate_every", consolidate_every, 0),
            ("consolidate_steps", consolidate_steps, 0),
            ("consolidate_batch_size", consolidate_batch_size, 2),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValidationError(name, f"an int >= {low}", describe(value))
        capacity = int(buffer.memory.capacity)
        if max_unit_length is None:
            max_unit_length = max(1, capacity // 4)
        if not isinstance(max_unit_length, (int, np.integer)) or not 1 <= max_unit_length <= capacity:
            raise ValidationError("max_unit_length", f"an int in [1, capacity={capacity}]", describe(max_unit_length))
        if segmenter is None:
            segmenter = _default_segmenter()
        for method in ("add", "flush", "reset"):
            if not callable(getattr(segmenter, method, None)):
                raise ValidationError("segmenter", "a Segmenter (with add, flush and reset)", describe(segmenter))
        self.hippo = buffer
        self._ingest = EpisodeIngestor(buffer)  # each completed unit goes in at once
        self.segmenter = segmenter
        self.n_envs = int(n_envs)
        self.device = torch.device(device)
        self.handle_timeout_termination = bool(handle_timeout_termination)
        self.consolidate_every = int(consolidate_every)
        self.consolidate_steps = int(consolidate_steps)
        self.consolidate_batch_size = int(consolidate_batch_size)
        self.max_unit_length = int(max_unit_length)
        self.action_dtype = action_dtype
        self.obs_dtype = obs_dtype
        self.scalar_actions = bool(scalar_actions)
        self.sb3_logger: Any = None
        self.last_obs: NumpyObs | None = None
        # With keys over windows (FeatureConfig(context > 1)): each env's last observations of its
        # current episode, so the default query is the agent's own window (history-keyed recall).
        self.context = int(getattr(buffer, "context", 1))
        self._windows: list[deque[Any]] = [deque(maxlen=self.context) for _ in range(self.n_envs)]
        self.last_batch: ReplayBatch | None = None
        self.last_consolidation: dict[str, Any] | None = None
        self.pending = np.zeros(self.n_envs, dtype=np.int64)  # per stream: received, not yet in memory
        self._segmenter_pending = getattr(segmenter, "pending", None) if callable(getattr(segmenter, "pending", None)) else None
        self._streams = np.arange(self.n_envs, dtype=np.int64)
        self._trusted: tuple[Any, ...] | None = None  # (segmenter, step layout) it trusts (_trusted_layout)
        self.num_received = 0
        self.num_units_stored = 0
        self.num_partial_flushes = 0
        self.num_consolidations = 0
        self._next_consolidation = self.consolidate_every

    # ------------------------------------------------------------------ write
    def add(
        self,
        obs: Any,
        next_obs: Any,
        action: Any,
        reward: Any,
        done: Any,
        infos: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Record one vectorised step: one transition per env.

        Args:
            obs: ``[n_envs, *obs_shape]`` observations (a dict of them for Dict spaces).
            next_obs: ``[n_envs, *obs_shape]`` next observations; for a ``done`` env, its
                terminal observation (SB3 substitutes it already).
            action: ``[n_envs, ...]`` actions (stored as ``[n_envs, action_dim]``).
            reward: ``[n_envs]`` rewards.
            done: ``[n_envs]`` done flags (terminated or truncated).
            infos: One info dict per env (``TimeLimit.truncated`` marks a time-limit ``done``).

        Raises:
            ValidationError: Shapes do not match ``n_envs``.
        """
        n = self.n_envs
        if n == 1:  # one env's unbatched arrays are accepted too (the seed's calling convention)
            obs, next_obs, action = _one_env(obs), _one_env(next_obs), _one_env(action)
        obs = _batch_obs(obs, n, "obs", self.obs_dtype)
        next_obs = _batch_obs(next_obs, n, "next_obs", self.obs_dtype)
        _check_finite(obs, "obs")
        _check_finite(next_obs, "next_obs")
        action = _batch_rows(action, n, "action", self.action_dtype).reshape(n, -1)
        if self.scalar_actions:
            # Discrete actions are stored as scalars, as RecordEpisodes and the Minari loader do,
            # so memories from any source are interchangeable; samples come back [B, 1].
            action = action.reshape(n)
        reward = np.asarray(reward, dtype=np.float32).reshape(-1)
        done = np.asarray(done).reshape(-1).astype(bool)
        if reward.shape[0] != n or done.shape[0] != n:
            raise ValidationError("reward/done", f"{n} values each (one per env)", f"{reward.shape[0]}/{done.shape[0]}")
        if not np.isfinite(reward).all():
            raise ValidationError("reward", "finite values", f"{reward.tolist()}")
        if infos is None:
            infos = [{}] * n
        elif len(infos) != n:
            raise ValidationError("infos", f"a list of {n} dicts (one per env)", f"{len(infos)} items")
        if self.handle_timeout_termination and done.any():
            timeout = np.fromiter((bool(info.get("TimeLimit.truncated", False)) for info in infos), bool, n)
            terminated = done & ~timeout
            truncated = done & timeout
        else:
            terminated, truncated = done, np.zeros(n, dtype=bool)
        segmenter = self.segmenter
        batched = getattr(segmenter, "add_batch", None)
        if batched is not None and self._segmenter_pending is not None:  # one vectorised call (hippogym's Segmenter)
            if self._trusted_layout(obs, next_obs, action):
                # Arrays already checked above, in the layout the segmenter stores: no second round of checks.
                segments = segmenter.add_batch_trusted(
                    obs, action, reward.astype(np.float64), terminated, truncated, next_obs, infos, self._streams
                )
            else:
                segments = batched(
                    obs, action, reward, terminated, truncated, next_obs, infos=infos, streams=self._streams
                )
            self.pending += 1
            if segments:
                self._store(segments)
        else:  # a segmenter with only the per-transition contract
            for i in range(n):
                segments = segmenter.add(
                    _row(obs, i), action[i], float(reward[i]), bool(terminated[i]), bool(truncated[i]),
                    _row(next_obs, i), infos[i], stream=i,
                )
                self.pending[i] += 1
                if segments:
                    self._store(segments, stream=i)
        if (self.pending[0] if n == 1 else self.pending.max()) >= self.max_unit_length:
            for i in np.flatnonzero(self.pending >= self.max_unit_length):
                self._store(segmenter.flush(int(i)), stream=int(i), partial=True)
        self.last_obs = _copy_obs(next_obs)
        if self.context > 1:
            for i, window in enumerate(self._windows):
                if not window:  # the first step of an episode: its first observation too
                    window.append(_copy_obs(_row(obs, i)))
                window.append(_row(self.last_obs, i))
                if done[i]:
                    window.clear()
        self.num_received += n
        if self.consolidate_every and self.num_received >= self._next_consolidation:
            self._maybe_consolidate()

    def _trusted_layout(self, obs: NumpyObs, next_obs: NumpyObs, action: np.ndarray) -> bool:
        """Whether this step may skip the segmenter's input checks (:meth:`Segmenter.trusted_layout`).

        True when the step's arrays are plain numpy arrays in one layout and the segmenter trusts
        that layout for all ``n_envs`` streams. ``add`` has then already checked what the
        segmenter would: row counts, finite observations and rewards, one info dict per env.
        """
        if type(obs) is not np.ndarray or type(next_obs) is not np.ndarray:
            return False
        if next_obs.shape != obs.shape or next_obs.dtype != obs.dtype:
            return False
        segmenter = self.segmenter
        key = (segmenter, obs.shape, obs.dtype, action.shape, action.dtype)
        if self._trusted == key:  # a "yes" holds for good: the stored layout never changes
            return True
        if not isinstance(segmenter, Segmenter):
            return False
        if segmenter.trusted_layout(obs.shape[1:], obs.dtype, action.shape[1:], action.dtype, streams=self.n_envs):
            self._trusted = key
            return True
        return False

    def _store(self, segments: Sequence[Episode], stream: int | None = None, partial: bool = False) -> None:
        """Add completed segments to the memory and update the per-stream pending counts."""
        for episode in segments:
            if self.hippo.encoder is None:
                # The encoder is created at the first insert: keep its initialisation off the
                # caller's global torch RNG stream (SB3 seeds that stream for its own networks).
                with torch.random.fork_rng(devices=[]):
                    self._ingest.put([episode])
            else:
                self._ingest.put([episode])
            if stream is not None and self._segmenter_pending is None:
                self.pending[stream] = max(0, int(self.pending[stream]) - len(episode))
            self.num_units_stored += 1
            self.num_partial_flushes += int(partial)
        if segments and self._segmenter_pending is not None:
            # The segmenter knows exactly what is still open (overlapping windows included).
            self.pending[:] = [self._segmenter_pending(i) for i in range(self.n_envs)]

    def flush(self, stream: int | None = None) -> int:
        """Store the in-progress segment of ``stream`` (all streams when ``None``) as units.

        The segmenter forgets what it flushed, so nothing is stored twice: the rest of each
        environment episode becomes the next unit(s).

        Returns:
            Number of transitions moved into the memory.
        """
        before = int(self.hippo.memory.total_added)
        streams = range(self.n_envs) if stream is None else [int(stream)]
        for i in streams:
            self._store(self.segmenter.flush(i), i, partial=True)
        return int(self.hippo.memory.total_added) - before

    def reset(self) -> None:
        """Drop in-progress segments (the memory itself is kept)."""
        self.segmenter.reset()
        self.pending[:] = 0
        self.last_obs = None
        for window in self._windows:
            window.clear()

    @property
    def num_pending(self) -> int:
        """Transitions received but not yet in the memory (their segment is still open)."""
        return int(self.pending.sum())

    # ------------------------------------------------------------------ consolidation
    def _maybe_consolidate(self) -> None:
        if len(self.hippo) < max(2, self.consolidate_batch_size // 4):
            return  # too little to learn from yet: retry at the next step
        self._next_consolidation = (self.num_received // self.consolidate_every + 1) * self.consolidate_every
        self.consolidate()

    def consolidate(self) -> dict[str, Any]:
        """Run one consolidation now and log its metrics.

        The encoder update runs under its own RNG state (``torch.random.fork_rng``), so it does
        not shift the global torch random stream the RL algorithm uses.

        Raises:
            EmptyMemoryError: Fewer than 2 transitions in memory.
        """
        hippo = self.hippo
        with torch.random.fork_rng(devices=[]):
            if hippo.consolidator is None and hippo.encoder is not None:
                from hippogym.replay.defaults import build_default_consolidator

                seed = hippo.seed if hippo.seed is not None else random.getrandbits(62)
                hippo.consolidator = build_default_consolidator(hippo.encoder, int(seed) + 1, hippo.consolidator_kwargs)
            metrics = hippo.consolidate(steps=self.consolidate_steps, batch_size=self.consolidate_batch_size)
        self.num_consolidations += 1
        self.last_consolidation = metrics
        scalars = _scalar_metrics(metrics)
        scalars.update(num_consolidations=self.num_consolidations, memory_transitions=len(hippo), memory_units=hippo.num_episodes)
        if self.sb3_logger is not None:
            for key, value in scalars.items():
                self.sb3_logger.record(f"hippo/{key}", value)
        logger.info(
            "consolidation %d at %d transitions: loss %.4f, memory %d transitions in %d units",
            self.num_consolidations, self.num_received, scalars.get("loss", float("nan")), len(hippo), hippo.num_episodes,
        )
        return metrics

    # ------------------------------------------------------------------ read
    def recent_query(self) -> Any:
        """The latest next-observation of every env ``[n_envs, ...]`` (``None`` before any add).

        With keys over windows (``context > 1``): one :class:`~hippogym.ObservationWindow` per env,
        its observations of the current episode (the terminal one for an env that just ended).
        """
        if self.last_obs is None:
            return None
        if self.context > 1:
            return [
                ObservationWindow(list(window) if window else [_row(self.last_obs, i)])
                for i, window in enumerate(self._windows)
            ]
        return _to_torch(self.last_obs)

    def sample(
        self, batch_size: int, query_state: Any = None, env: Any = None
    ) -> ReplayBufferSamples | DictReplayBufferSamples:
        """Draw a hybrid batch in SB3's format.

        If the memory is still empty, the in-progress segments of all streams are flushed first
        (see the module docstring), so sampling works as soon as any transition was added.

        Args:
            batch_size: Transitions in the batch.
            query_state: What semantic draws recall around: observations ``[Q, ...]`` (a dict for
                Dict spaces), ``"recent"`` for the latest observation of every env, or ``None``
                for base (uniform/prioritised) draws only.
            env: Optional ``VecNormalize`` whose ``normalize_obs``/``normalize_reward`` are
                applied, as SB3's buffers do.

        Returns:
            ``ReplayBufferSamples(observations, actions, next_observations, dones, rewards)``
            (``DictReplayBufferSamples`` for dict observations): ``dones``/``rewards`` are
            ``[B, 1]`` float32, ``dones`` = terminated, actions ``[B, action_dim]`` in their stored
            dtype; all on ``device``. The underlying batch (indices, modes, weights) is kept in
            :attr:`last_batch`.

        Raises:
            EmptyMemoryError: No transition was added yet.
        """
        if len(self.hippo) == 0:
            moved = self.flush()
            if moved:
                logger.info("memory empty at the first sample: flushed %d in-progress transitions as partial units", moved)
            if len(self.hippo) == 0:
                raise EmptyMemoryError("Cannot sample: no transition has been added to the buffer yet.")
        if isinstance(query_state, str):
            if query_state != "recent":
                raise ValidationError("query_state", "observations, 'recent' or None", repr(query_state))
            query_state = self.recent_query()
        batch = self.hippo.sample(batch_size, query_state=query_state)
        self.last_batch = batch
        return self.to_sb3(batch, env)

    def to_sb3(
        self, batch: ReplayBatch, env: Any = None
    ) -> ReplayBufferSamples | DictReplayBufferSamples | HippoReplayBufferSamples | HippoDictReplayBufferSamples:
        """Convert a :class:`~hippogym.ReplayBatch` to SB3's samples (normalised by ``env``).

        Batches with returns-to-go become :class:`HippoReplayBufferSamples`; n-step batches carry
        ``discounts`` (``gamma^m``), as SB3's ``NStepReplayBuffer`` samples do.
        """
        obs, next_obs, tails = batch.observations, batch.next_observations, batch.tail_observations
        rewards = batch.rewards.reshape(-1, 1)
        if env is not None:
            obs = _from_normalized(env.normalize_obs(_to_numpy(obs)))
            next_obs = _from_normalized(env.normalize_obs(_to_numpy(next_obs)))
            if tails is not None:
                tails = _from_normalized(env.normalize_obs(_to_numpy(tails)))
            rewards = torch.from_numpy(np.asarray(env.normalize_reward(rewards.cpu().numpy()), dtype=np.float32))
        dones = batch.terminated.reshape(-1, 1).to(torch.float32)
        actions = batch.actions.reshape(batch.actions.shape[0], -1)
        discounts = None
        targets = self.hippo.targets
        if batch.discounts is not None and targets is not None and targets.n_steps > 1:
            discounts = batch.discounts.reshape(-1, 1)
        fields: list[Any] = [obs, actions, next_obs, dones, rewards, discounts]
        if batch.returns is not None:
            returns = batch.returns.reshape(-1, 1)
            if env is not None:  # the same reward scaling as the TD target's rewards
                returns = torch.from_numpy(np.asarray(env.normalize_reward(returns.numpy()), dtype=np.float32))
            fields += [returns, batch.return_discounts.reshape(-1, 1), tails]
            cls: Any = HippoDictReplayBufferSamples if isinstance(obs, dict) else HippoReplayBufferSamples
        else:
            cls = DictReplayBufferSamples if isinstance(obs, dict) else ReplayBufferSamples
        device = self.device
        if device.type == "cpu" and rewards.device.type == "cpu":
            return cls(*fields)
        return cls(*(None if x is None else _move(x, device) for x in fields))

    def update_priorities(self, priorities: Tensor, indices: Tensor | None = None) -> None:
        """Set priorities (e.g. ``|TD error|``) of the last sampled batch (or of ``indices``).

        Raises:
            HippoError: No batch was sampled yet, or the buffer is not prioritised.
        """
        if indices is None:
            if self.last_batch is None:
                raise HippoError("update_priorities needs a sampled batch first (or explicit indices).")
            indices = self.last_batch.indices
        self.hippo.update_priorities(indices, torch.as_tensor(priorities).detach().reshape(-1).cpu())

    def __len__(self) -> int:
        return len(self.hippo)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["sb3_logger"] = None  # holds open files; re-attach after loading
        return state


# ---------------------------------------------------------------------- SB3 buffer
def _new_buffer(
    extra: dict[str, Any], action_space: spaces.Space, *, capacity: int, embed_dim: int, mixture_ratio: MixtureSchedule,
    top_k: int, prioritized: bool, seed: int, eviction: Any, index: Any, key_dtype: str = DEFAULT_KEY_DTYPE,
) -> HippocampalReplayBuffer:
    """The buffer :class:`HippoReplayBuffer` creates: the adapter's options plus ``hippo_kwargs``.

    ``hippo_kwargs`` may hold ``semantic``/``features``/``sampler`` (their ``top_k`` and the
    sampler come from the adapter's own ``top_k`` and ``prioritized`` unless ``sampler`` is given)
    or the buffer's old flat arguments (with the buffer's deprecation warning); a discrete action
    space gives ``num_actions`` when ``key_action`` is on and it is unset.
    """
    semantic = dataclasses.asdict(coerce_semantic(extra.pop("semantic", None)))
    semantic.update(pop_legacy(extra, "semantic", stacklevel=4), top_k=top_k)
    features = dataclasses.asdict(coerce_features(extra.pop("features", None)))
    features.update(pop_legacy(extra, "features", stacklevel=4))
    if isinstance(action_space, spaces.Discrete) and features["key_action"] and features["num_actions"] is None:
        features["num_actions"] = int(action_space.n)
    old_sampler = pop_legacy(extra, "sampler", stacklevel=4)
    if "sampler" in extra:
        sampler = extra.pop("sampler")
    else:
        sampler = legacy_sampler_spec({"prioritized": prioritized, **old_sampler})
    encoder = extra.get("encoder")
    store = {"embed_dim": getattr(encoder, "embed_dim", embed_dim), "capacity": capacity, "eviction": eviction,
             "index": index, "key_dtype": key_dtype, **pop_legacy(extra, "memory", stacklevel=4)}
    return HippocampalReplayBuffer(
        MemoryStore(**store, seed=seed), mixture_ratio=mixture_ratio, sampler=sampler,
        semantic=SemanticConfig(**semantic), features=FeatureConfig(**features), seed=seed, **extra,
    )


class HippoReplayBuffer(ReplayBuffer):
    """An SB3 ``ReplayBuffer`` backed by a :class:`~hippogym.HippocampalReplayBuffer`.

    Pass it as ``replay_buffer_class`` (hippogym options in ``replay_buffer_kwargs``); SB3 builds
    it with its positional arguments. SB3's own numpy storage is never allocated: transitions go
    through the segmenter into the episodic memory (see the module docstring), and ``sample``
    draws a hybrid batch (a ``mixture_ratio`` share recalled around the query, the rest uniform or
    prioritised).

    Args:
        buffer_size: Capacity in transitions (the memory's ``capacity``; eviction is by units).
        observation_space: Box, Discrete, MultiDiscrete, MultiBinary, or a Dict of those (samples
            are then ``DictReplayBufferSamples``; use a ``MultiInputPolicy``).
        action_space: The action space.
        device: Device of the samples.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be ``False`` (the memory has its own layout).
        handle_timeout_termination: Store time-limit ``done`` s as truncated (bootstrapped).
        mixture_ratio: Share of semantic draws: a float, a schedule such as
            ``RampSchedule(0.2, 0.5, ...)`` or ``callable(transitions_added)``.
        embed_dim: Key width of the memory.
        top_k: Units retrieved per query.
        segmenter: The segmenter (default ``TerminalSegmenter()``).
        consolidate_every: Consolidate every this many env steps (summed over envs; 0 = never).
        consolidate_steps: Encoder steps per consolidation.
        consolidate_batch_size: Batch size of those steps.
        query: ``"recent"`` (default: latest observation of every env), ``None`` (no semantic
            draws) or ``callable(buffer) -> observations [Q, ...]``.
        prioritized: Prioritised base draws. SB3's algorithms neither update priorities nor use
            importance weights: this is for algorithms that call :meth:`update_priorities` with
            the TD errors of the last batch (weights are in ``buffer.adapter.last_batch``), such as
            :class:`~hippogym.integrations.episodic_dqn.HippoDQN` with ``priority="td"``.
        seed: Seed of the memory's sampling and encoder initialisation. Default: drawn from
            Python's ``random`` (seeded by SB3's ``seed``), so runs with a seed stay reproducible
            without perturbing SB3's numpy/torch random streams.
        eviction: The memory's eviction policy.
        index: The memory's retrieval index.
        key_dtype: How the memory keeps keys: ``"float16"`` (default) or ``"float32"``.
        buffer: An existing :class:`~hippogym.HippocampalReplayBuffer` to use instead of creating
            one (e.g. a memory loaded from disk, for offline-to-online bootstrapping); the options
            above that configure a new buffer are then ignored. SB3's ``model.save`` pickles
            ``replay_buffer_kwargs``, so a model saved with ``buffer=`` carries that memory; save
            the memory on its own (``state_dict``) and pass it again when loading instead.
        max_unit_length: See :class:`SB3ReplayBufferWrapper`.
        hippo_kwargs: Extra keyword arguments of :class:`~hippogym.HippocampalReplayBuffer`
            (``semantic=SemanticConfig(temperature=..., exact=...)``, ``features=FeatureConfig(key_action=True)``,
            ``sampler=PrioritizedSpec(alpha=..., beta=...)``, ``encoder``, ``consolidator``, ...;
            ``top_k`` comes from ``top_k`` above, and ``sampler`` replaces ``prioritized``).
        n_steps: Rewards summed per TD target. ``n_steps > 1`` gives the samples of SB3's
            ``NStepReplayBuffer`` on the same transitions (n-step ``rewards``, the window's last
            ``next_observations`` and ``dones``, ``discounts = gamma^m``), windows ending at the
            unit's end; SB3's DQN/SAC/TD3 use ``discounts`` as they are.
        gamma: Discount of n-step targets and returns-to-go (set it to the algorithm's ``gamma``).
        returns: Samples carry each transition's discounted return-to-go inside its unit
            (:class:`HippoReplayBufferSamples`: ``returns``, ``return_discounts``,
            ``tail_observations``), what :class:`~hippogym.integrations.episodic_dqn.HippoDQN` uses.
        env: The goal env (a VecEnv, a gym env, or anything with ``compute_reward``): turns on
            hindsight relabelling as SB3's ``HerReplayBuffer`` does (Dict observations with
            ``observation``, ``achieved_goal``, ``desired_goal``). Composes with semantic draws,
            ``n_steps`` and ``returns``.
        compute_reward: ``compute_reward(achieved_goal, desired_goal, infos)`` instead of ``env``.
        n_sampled_goal: Virtual goals per real transition (HER's ``k``; default 4).
        goal_selection_strategy: ``"future"`` (default), ``"final"`` or ``"episode"`` (or SB3's enum).

    Raises:
        ValidationError: Unsupported space, ``optimize_memory_usage=True``, a bad option, or a
            ``buffer`` whose stored layout does not match the spaces.

    Example:
        >>> from stable_baselines3 import DQN
        >>> from hippogym import RampSchedule
        >>> model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=HippoReplayBuffer,
        ...             replay_buffer_kwargs=dict(mixture_ratio=RampSchedule(0.2, 0.5, 1_000, 5_000),
        ...                                       consolidate_every=2_000))  # doctest: +SKIP
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        mixture_ratio: MixtureSchedule = 0.5,
        embed_dim: int = DEFAULT_EMBED_DIM,
        top_k: int = 5,
        segmenter: Any = None,
        consolidate_every: int = 0,
        consolidate_steps: int = 50,
        consolidate_batch_size: int = 64,
        query: QuerySpec = "recent",
        prioritized: bool = False,
        seed: int | None = None,
        eviction: Any = "utility",
        index: Any = "transition",
        key_dtype: str = DEFAULT_KEY_DTYPE,
        buffer: HippocampalReplayBuffer | None = None,
        max_unit_length: int | None = None,
        hippo_kwargs: Mapping[str, Any] | None = None,
        n_steps: int = 1,
        gamma: float = 0.99,
        returns: bool = False,
        env: Any = None,
        compute_reward: Callable[..., Any] | None = None,
        n_sampled_goal: int | None = None,
        goal_selection_strategy: Any = None,
    ) -> None:
        if not isinstance(buffer_size, (int, np.integer)) or buffer_size < 1:
            raise ValidationError("buffer_size", "an int >= 1 (transitions)", describe(buffer_size))
        if optimize_memory_usage:
            raise ValidationError(
                "optimize_memory_usage", "False", "True",
                "HippoReplayBuffer stores transitions in the episodic memory's own layout; drop the option.",
            )
        _check_space(observation_space, "observation_space")
        if isinstance(observation_space, spaces.Dict):
            for key, sub in observation_space.spaces.items():
                _check_space(sub, f"observation_space[{key!r}]", allow_dict=False)
        if not (isinstance(query, str) and query == "recent") and query is not None and not callable(query):
            raise ValidationError("query", "'recent', None or a callable(buffer) -> observations", describe(query))
        # BaseBuffer only: ReplayBuffer.__init__ would allocate SB3's full numpy storage.
        BaseBuffer.__init__(self, int(buffer_size), observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(int(buffer_size) // n_envs, 1)  # rows of n_envs transitions, as SB3 counts
        self.optimize_memory_usage = False
        self.handle_timeout_termination = bool(handle_timeout_termination)
        self.query = query
        self.is_dict = isinstance(observation_space, spaces.Dict)
        if self.is_dict:
            self.obs_dtypes: Any = {k: np.dtype(s.dtype) for k, s in observation_space.spaces.items()}
        else:
            self.obs_dtypes = np.dtype(observation_space.dtype)
        self.action_dtype = np.dtype(self._maybe_cast_dtype(action_space.dtype))

        if buffer is None:
            if seed is None:
                seed = random.getrandbits(62)
            buffer = _new_buffer(
                dict(hippo_kwargs or {}), action_space, capacity=int(buffer_size), embed_dim=embed_dim,
                mixture_ratio=mixture_ratio, top_k=top_k, prioritized=prioritized, seed=seed, eviction=eviction,
                index=index, key_dtype=key_dtype,
            )
        else:
            self._check_loaded(buffer)
        if isinstance(getattr(buffer, "spaces", None), dict) and not buffer.spaces:  # saved into the manifest
            buffer.spaces.update(observation_space=observation_space, action_space=action_space)
        self.adapter = SB3ReplayBufferWrapper(
            buffer, segmenter, n_envs, self.device,
            handle_timeout_termination=self.handle_timeout_termination,
            consolidate_every=consolidate_every, consolidate_steps=consolidate_steps,
            consolidate_batch_size=consolidate_batch_size, max_unit_length=max_unit_length,
            action_dtype=self.action_dtype, obs_dtype=self.obs_dtypes,
            scalar_actions=isinstance(action_space, spaces.Discrete),
        )
        self.n_steps, self.gamma = n_steps, gamma
        relabeler = None
        hindsight = env is not None or compute_reward is not None
        if not hindsight and (n_sampled_goal is not None or goal_selection_strategy is not None):
            raise ValidationError(
                "env", "the goal env (or compute_reward=) when n_sampled_goal/goal_selection_strategy are given", "None"
            )
        if hindsight:
            HindsightRelabeler.check_observations(observation_space.spaces if self.is_dict else observation_space)
            relabeler = HindsightRelabeler(
                compute_reward if compute_reward is not None else _reward_function(env),
                n_sampled_goal=4 if n_sampled_goal is None else n_sampled_goal,
                goal_selection_strategy="future" if goal_selection_strategy is None else goal_selection_strategy,
                seed=random.getrandbits(62),
            )
        if n_steps != 1 or returns or relabeler is not None:
            buffer.use_value_targets(gamma=gamma, n_steps=n_steps, returns=bool(returns), relabeler=relabeler)

    def set_env(self, env: Any) -> None:
        """Give hindsight relabelling the goal env whose ``compute_reward`` it calls (as ``HerReplayBuffer``)."""
        targets = self.hippo.targets
        if targets is None or targets.relabeler is None:
            raise HippoError("set_env: this buffer does not relabel goals (it was built without env=).")
        targets.relabeler.compute_reward = _reward_function(env)

    def _check_loaded(self, buffer: Any) -> None:
        """Refuse a loaded memory whose stored layout does not match the spaces."""
        if not isinstance(buffer, HippocampalReplayBuffer):
            raise ValidationError("buffer", "a hippogym.HippocampalReplayBuffer", describe(buffer))
        memory = buffer.memory
        if not memory.allocated:
            return

        def torch_dtype(dtype: Any) -> torch.dtype:
            return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype

        if self.is_dict:
            want = {k: (tuple(self.obs_shape[k]), torch_dtype(self.obs_dtypes[k])) for k in sorted(self.obs_shape)}
        else:
            want = {"": (tuple(self.obs_shape), torch_dtype(self.obs_dtypes))}
        have = {(f.name if memory.layout.is_dict else ""): (tuple(f.shape), f.dtype) for f in memory.layout.fields}
        if memory.layout.is_dict != self.is_dict or want != have:
            def text(spec: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> str:
                return ", ".join(f"{k + ': ' if k else ''}{shape} {str(dt)[6:]}" for k, (shape, dt) in spec.items())

            raise ValidationError(
                "buffer", f"a memory of observations {text(want)} (the observation space)",
                f"a memory of observations {text(have)}",
            )
        want_action = torch_dtype(self.action_dtype)
        want_shape = () if isinstance(self.action_space, spaces.Discrete) else (self.action_dim,)
        if tuple(memory.action_shape) != want_shape or memory.action_dtype != want_action:
            raise ValidationError(
                "buffer", f"a memory of actions {want_shape} {str(want_action)[6:]} (the action space)",
                f"actions {tuple(memory.action_shape)} {str(memory.action_dtype)[6:]}",
            )

    # ------------------------------------------------------------------ views
    @property
    def device(self) -> torch.device:
        """Device of the samples (SB3 sets it, e.g. in ``load_replay_buffer``)."""
        return self._device

    @device.setter
    def device(self, value: torch.device | str) -> None:
        self._device = torch.device(value)
        adapter = self.__dict__.get("adapter")
        if adapter is not None:
            adapter.device = self._device

    @property
    def hippo(self) -> HippocampalReplayBuffer:
        """The underlying :class:`~hippogym.HippocampalReplayBuffer`."""
        return self.adapter.hippo

    @property
    def segmenter(self) -> Any:
        """The segmenter that cuts each env's stream into units."""
        return self.adapter.segmenter

    @property
    def num_received(self) -> int:
        """Transitions received so far (env steps summed over envs)."""
        return self.adapter.num_received

    @property
    def num_pending(self) -> int:
        """Transitions received whose segment is still open (not sampleable yet)."""
        return self.adapter.num_pending

    def __len__(self) -> int:
        """Transitions in the memory (sampleable)."""
        return len(self.adapter.hippo)

    def __bool__(self) -> bool:
        """Always true, like SB3's buffers (an empty memory must not read as "no buffer")."""
        return True

    def set_logger(self, sb3_logger: Any) -> None:
        """Record consolidation metrics (``hippo/...``) with an SB3 ``Logger`` (``model.logger``)."""
        self.adapter.sb3_logger = sb3_logger

    # ------------------------------------------------------------------ SB3 API
    def size(self) -> int:
        """Vector steps added, capped at ``buffer_size``: SB3's count of rows of ``n_envs`` transitions.

        ``len(buffer)`` gives the transitions held in the memory (sampleable), and
        :attr:`num_pending` those still in open segments.
        """
        return super().size()

    def add(
        self,
        obs: NumpyObs,
        next_obs: NumpyObs,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Record one vectorised step (as SB3's ``_store_transition`` calls it).

        Shapes are SB3's: ``obs``/``next_obs`` ``[n_envs, *obs_shape]`` (``[n_envs]`` for
        Discrete), ``action`` ``[n_envs, ...]``, ``reward``/``done`` ``[n_envs]``.
        """
        n = self.n_envs
        if self.is_dict:
            obs = {k: np.asarray(v).reshape((n, *self.obs_shape[k])) for k, v in obs.items()}
            next_obs = {k: np.asarray(v).reshape((n, *self.obs_shape[k])) for k, v in next_obs.items()}
        elif isinstance(self.observation_space, spaces.Discrete):
            obs = np.asarray(obs).reshape((n, *self.obs_shape))
            next_obs = np.asarray(next_obs).reshape((n, *self.obs_shape))
        action = np.asarray(action).reshape((n, self.action_dim))
        self.adapter.add(obs, next_obs, action, reward, done, infos)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples | DictReplayBufferSamples:
        """A hybrid batch in SB3's format (see :meth:`SB3ReplayBufferWrapper.sample`).

        Args:
            batch_size: Transitions in the batch.
            env: The algorithm's ``VecNormalize`` (or ``None``): observations and rewards are
                normalised with it, as SB3's buffers do.
        """
        query = self.query
        if query is not None and not isinstance(query, str):
            query = query(self)
        return self.adapter.sample(batch_size, query_state=query, env=env)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> ReplayBufferSamples:
        raise HippoError(
            "HippoReplayBuffer has no row index shared with SB3: draw batches with sample(batch_size, env)."
        )

    def update_priorities(self, priorities: Tensor, indices: Tensor | None = None) -> None:
        """Set priorities (``|TD error|``) of the last sampled batch; needs ``prioritized=True``."""
        self.adapter.update_priorities(priorities, indices)

    def flush(self) -> int:
        """Move every in-progress segment into the memory (e.g. before saving it); see the adapter."""
        return self.adapter.flush()

    def consolidate(self) -> dict[str, Any]:
        """Consolidate the memory now and return the metrics."""
        return self.adapter.consolidate()

    def reset(self) -> None:
        """Reset SB3's counters and drop in-progress segments; the memory's contents are kept."""
        super().reset()
        self.adapter.reset()

    def extend(self, *args: Any, **kwargs: Any) -> None:
        raise HippoError("HippoReplayBuffer.extend is not supported: call add once per vectorised step.")


def _check_space(space: spaces.Space, name: str, allow_dict: bool = True) -> None:
    if isinstance(space, _SUPPORTED_SPACES) or (allow_dict and isinstance(space, spaces.Dict)):
        return
    raise ValidationError(name, "a Box, Discrete, MultiDiscrete, MultiBinary or Dict space", describe(space))


# ---------------------------------------------------------------------- callback
class HippoCallback(BaseCallback):
    """Connects a :class:`HippoReplayBuffer` to the model's SB3 logger.

    Consolidation metrics are then recorded as ``hippo/...`` in the model's logs (TensorBoard,
    CSV, stdout), and memory statistics every ``log_every`` steps. Without it, metrics go to
    Python ``logging``.

    Args:
        log_every: Record ``hippo/memory_transitions``, ``hippo/memory_units``,
            ``hippo/pending`` and ``hippo/mixture_ratio`` every this many calls (0 = never).
        health_every: Record the key-space health figures as ``hippo/health/*`` (outcome
            alignment, effective rank and mean cosine for collapse, key staleness for drift; see
            :func:`hippogym.integrations.tensorboard.health_scalars`) every this many calls
            (0 = never, the default: each costs a small SVD over about 1,000 keys).
        projector_every: Write a sample of keys to TensorBoard's embedding projector every this
            many calls (0 = never; needs the model's TensorBoard logger, ``tensorboard_log=...``).
        verbose: SB3 verbosity.

    Example:
        >>> model.learn(20_000, callback=HippoCallback())  # doctest: +SKIP
    """

    def __init__(self, log_every: int = 1000, verbose: int = 0, health_every: int = 0, projector_every: int = 0) -> None:
        super().__init__(verbose)
        self.log_every = int(log_every)
        self.health_every = int(health_every)
        self.projector_every = int(projector_every)

    def _tensorboard_writer(self) -> Any:
        """The SummaryWriter of the model's TensorBoard output, or None."""
        for fmt in getattr(self.logger, "output_formats", ()):
            writer = getattr(fmt, "writer", None)
            if writer is not None and hasattr(writer, "add_embedding"):
                return writer
        return None

    def _buffer(self) -> HippoReplayBuffer | None:
        buffer = getattr(self.model, "replay_buffer", None)
        return buffer if isinstance(buffer, HippoReplayBuffer) else None

    def _on_training_start(self) -> None:
        buffer = self._buffer()
        if buffer is not None:
            buffer.set_logger(self.logger)
            provenance = getattr(buffer.hippo, "provenance", None)
            if isinstance(provenance, dict):  # what the model knows goes into the saved manifest
                try:
                    spec = self.training_env.get_attr("spec", [0])[0]
                except (AttributeError, IndexError):  # a VecEnv without per-env specs
                    spec = None
                if getattr(spec, "id", None):
                    provenance.setdefault("env_id", spec.id)
                provenance.setdefault("algorithm", type(self.model).__name__)

    def _on_step(self) -> bool:
        if self.log_every and self.n_calls % self.log_every == 0:
            buffer = self._buffer()
            if buffer is not None:
                self.logger.record("hippo/memory_transitions", len(buffer))
                self.logger.record("hippo/memory_units", buffer.hippo.num_episodes)
                self.logger.record("hippo/pending", buffer.num_pending)
                self.logger.record("hippo/mixture_ratio", buffer.hippo.mixture_ratio)
        buffer = self._buffer() if self.health_every or self.projector_every else None
        if buffer is not None and len(buffer.hippo) > 0:
            from hippogym.integrations.tensorboard import health_scalars, write_key_projector

            if self.health_every and self.n_calls % self.health_every == 0:
                for name, value in health_scalars(buffer).items():
                    self.logger.record(f"hippo/health/{name}", value)
            if self.projector_every and self.n_calls % self.projector_every == 0:
                writer = self._tensorboard_writer()
                if writer is not None:
                    write_key_projector(writer, buffer, step=self.num_timesteps)
        return True
