"""The memory store: transitions, their keys, the unit table, eviction and retrieval.

Layout (struct of arrays, allocated at the first insert once shapes are known, then grown by
doubling as rows are first used, up to ``capacity``: a large memory holding little costs little):

* **Rows** (``capacity`` of them, one per transition): observation and next-observation fields,
  action, reward, terminated, truncated, step, the owning unit's slot, the transition's key and the
  encoder version that made it. A unit (one added :class:`~hippogym.Episode`, whole episode or
  segment) occupies a contiguous range of rows.
* **Units** (a growable table indexed by *slot*): start row, length, return, unique id, source
  episode id, start step, success flag, retrieval hits, rescue count, and the unit's key centroid
  and radius used to prune retrieval.

The rows form a ring written at ``tail``. Making room for ``L`` rows only touches the units that
lie in ``[tail, tail + L)``: each is evicted or, if the eviction policy retains it, moved forward
(a copy of its rows, bounded by the policy's budget). Nothing proportional to the memory size is
rebuilt on insert.

Hot paths (insert, uniform draws, gathers, the fast retrieval path) work on numpy views that share
memory with the torch tensors (``tensor.numpy()``): a numpy call on a small array costs about 1 µs
here, a torch call 5-8 µs. The tensors stay the public storage; the views are refreshed whenever a
tensor is reallocated.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from hippogym.blas import blas_limited
from hippogym.types import DEFAULT_EMBED_DIM, DEFAULT_KEY_DTYPE, ObservationLayout, StepFeaturizer
from hippogym.episode import Episode
from hippogym.errors import CapacityError, DimensionMismatchError, EmptyMemoryError, ValidationError, describe
from hippogym.memory.eviction import EvictionPolicy, make_eviction
from hippogym.memory.index import RetrievalIndex
from hippogym.memory.indexes import make_index
from hippogym.memory.row_storage import INITIAL_ROWS, RowStorageMixin
from hippogym.memory.rows import KEY_DTYPES, as_torch, host_array, new_rows, numpy_view, take_rows, write_range
from hippogym.memory.store_state import StoreStateMixin
from hippogym.memory.units import UnitTableMixin

__all__ = ["INITIAL_ROWS", "MemoryStore"]

logger = logging.getLogger(__name__)


class MemoryStore(RowStorageMixin, UnitTableMixin, StoreStateMixin):
    """Episodic memory: stores units of transitions with one key per transition.

    Args:
        embed_dim: Width of the keys (default 64).
        capacity: Maximum number of **transitions** held (not episodes). Whole units are evicted
            to make room, so a unit longer than ``capacity`` is refused.
        eviction: ``"utility"`` (default: retains rare successes and often-retrieved units for a
            bounded number of extra passes), ``"fifo"``, a config dict or an
            :class:`~hippogym.memory.eviction.EvictionPolicy`.
        index: ``"transition"`` (default: nearest transitions, then their units; exact brute force
            on small memories, an IVF index on large ones, see
            :class:`~hippogym.memory.transition_index.TransitionIndex`), ``"torch"`` or ``"faiss"``
            (the older unit-centroid indexes), a config dict or a
            :class:`~hippogym.memory.index.RetrievalIndex`.
        key_dtype: ``"float16"`` (default: half the bytes; keys are read as float32 unit vectors, so
            a query built from a stored observation still scores 1 within 1e-5 on its own unit) or
            ``"float32"`` (a fresh-query search about 10 % faster, 128 more bytes a 64-d key).
        seed: Seed of the store's own generator (used by eviction to draw peers).

    Example:
        >>> import torch
        >>> from hippogym import Episode, MemoryStore
        >>> store = MemoryStore(embed_dim=8, capacity=100)
        >>> ep = Episode(states=torch.randn(11, 3), actions=torch.zeros(10, 1), rewards=torch.ones(10))
        >>> keys = torch.nn.functional.normalize(torch.randn(10, 8), dim=1)
        >>> store.add(ep, keys)
        0
        >>> store.num_transitions, store.num_units
        (10, 1)
    """

    def __init__(
        self,
        embed_dim: int = DEFAULT_EMBED_DIM,
        capacity: int = 100_000,
        eviction: str | Mapping[str, Any] | EvictionPolicy = "utility",
        index: str | Mapping[str, Any] | RetrievalIndex = "transition",
        key_dtype: str = DEFAULT_KEY_DTYPE,
        seed: int | None = None,
    ) -> None:
        if not isinstance(embed_dim, int) or embed_dim < 2:
            raise ValidationError("embed_dim", "an int >= 2", describe(embed_dim))
        if not isinstance(capacity, int) or capacity < 1:
            raise ValidationError("capacity", "an int >= 1 (number of transitions)", describe(capacity))
        if key_dtype not in KEY_DTYPES:
            raise ValidationError("key_dtype", f"one of {sorted(KEY_DTYPES)}", repr(key_dtype))
        self.embed_dim, self.capacity, self.key_dtype = embed_dim, capacity, key_dtype
        self.eviction = make_eviction(eviction)
        self.index = make_index(index)
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.Generator().seed() if seed is None else int(seed))
        self.layout: ObservationLayout | None = None
        self.action_shape: tuple[int, ...] | None = None
        self.action_dtype: torch.dtype | None = None
        self.listeners: list[Any] = []
        #: Bumped whenever what retrieval sees may change (inserts, evictions, moves, key refreshes).
        self.mutations = 0
        self._v_keys: np.ndarray | None = None  # the key view (keys_np) exists from the first insert
        self.rows_allocated = 0  # rows of the row storage so far (it grows up to capacity)
        self._init_units(64)
        self._reset_ring()

    # ------------------------------------------------------------------ allocation
    def _reset_ring(self) -> None:
        self.tail = 0
        self.order: deque[int] = deque()  # live unit slots, oldest first (= ring order from tail)
        self.free_slots: list[int] = []
        self.num_slots = 0  # slots ever used (upper bound of the live slot ids)
        self.num_transitions = 0
        self.high_water = 0  # rows [high_water, capacity) have never been written
        self.next_unit_id = 0
        self.inserts = 0
        self.total_added = 0
        self._ret_sum = 0.0
        self._ret_sq = 0.0
        self.row_slot = new_rows((self.capacity,), torch.int64, -1) if self.layout is not None else None
        self._v_row_slot = numpy_view(self.row_slot)
        self.mutations += 1


    # ------------------------------------------------------------------ insert
    def check_episode(self, episode: Episode) -> None:
        """Raise :class:`ValidationError` unless ``episode`` matches the stored layout."""
        if not isinstance(episode, Episode):
            raise ValidationError("episode", "a hippogym.Episode", describe(episode))
        if not self.allocated:
            return
        self.layout.check(episode.states, "episode.states")
        if tuple(episode.actions.shape[1:]) != self.action_shape or episode.actions.dtype != self.action_dtype:
            raise ValidationError(
                "episode.actions",
                f"per-step shape {self.action_shape} and dtype {str(self.action_dtype)[6:]} (as stored in memory)",
                describe(episode.actions),
            )
        if len(episode) > self.capacity:
            raise CapacityError(
                f"Expected an episode of at most capacity={self.capacity} transitions, got {len(episode)}. "
                "Raise `capacity` or cut long episodes with a FixedWindowSegmenter."
            )

    @blas_limited
    def add(self, episode: Episode, keys: Tensor, key_version: int = 0) -> int:
        """Store one unit and its per-transition keys.

        Args:
            episode: The unit.
            keys: ``[T, embed_dim]`` L2-normalised keys, one per transition.
            key_version: Encoder version that produced ``keys`` (for staleness).

        Returns:
            The unit's id (unique for the lifetime of the store).

        Raises:
            ValidationError: Layout, shape or dtype mismatch.
            CapacityError: The unit is longer than ``capacity``.
        """
        self.check_episode(episode)
        if len(episode) > self.capacity:
            raise CapacityError(
                f"Expected an episode of at most capacity={self.capacity} transitions, got {len(episode)}. "
                "Raise `capacity` or cut long episodes with a FixedWindowSegmenter."
            )
        length = len(episode)
        if keys.dim() != 2 or tuple(keys.shape) != (length, self.embed_dim):
            raise DimensionMismatchError("keys", f"shape ({length}, {self.embed_dim})", describe(keys))
        if not self.allocated:
            self._allocate(episode)
        start = self._make_room(length)
        end = start + length
        self._ensure_rows(end)
        for name, t in self.layout.as_dict(episode.states).items():
            write_range(self.obs[name], self._v_obs[name], start, end, t)
        for name, t in self.layout.as_dict(episode.next_states).items():
            write_range(self.next_obs[name], self._v_next_obs[name], start, end, t)
        write_range(self.actions, self._v_actions, start, end, episode.actions)
        write_range(self.rewards, self._v_rewards, start, end, episode.rewards)
        write_range(self.terminated, self._v_terminated, start, end, episode.terminated)
        write_range(self.truncated, self._v_truncated, start, end, episode.truncated)
        self._v_steps[start:end] = np.arange(episode.start_step, episode.start_step + length)
        write_range(self.keys, self._v_keys, start, end, keys)
        self._v_key_version[start:end] = int(key_version)
        if episode.infos or self.infos:
            self._write_infos(episode, start, length)

        slot = self.free_slots.pop() if self.free_slots else self._new_slot()
        ret = episode.episode_return
        self._v_start[slot] = start
        self._v_length[slot] = length
        self._v_return[slot] = ret
        self._v_id[slot] = self.next_unit_id
        self._v_source[slot] = -1 if episode.episode_id is None else episode.episode_id
        self._v_start_step[slot] = episode.start_step
        self._v_success[slot] = episode.outcome
        self._v_hits[slot] = 0.0
        self._v_rescues[slot] = 0
        self._v_added[slot] = self.inserts
        self._v_alive[slot] = True
        self._dead[slot] = 0.0
        self._v_row_slot[start:end] = slot
        self._geometry_one(slot, start, length)
        self.mutations += 1
        self.index.on_rows(self, start, length)
        self.order.append(slot)
        self.tail = start + length
        self.high_water = max(self.high_water, self.tail)
        self.num_transitions += length
        self.inserts += 1
        self.total_added += length
        self._ret_sum += ret
        self._ret_sq += ret * ret
        self.next_unit_id += 1
        self.index.add(self, [slot])
        for listener in self.listeners:
            listener.on_write(start, length)
        return int(self._v_id[slot])

    def _write_infos(self, episode: Episode, start: int, length: int) -> None:
        infos = episode.infos or {}
        for key, value in infos.items():
            if key not in self.infos:
                self.infos[key] = new_rows((self.rows_allocated, *value.shape[1:]), value.dtype)
            target = self.infos[key]
            if tuple(value.shape[1:]) != tuple(target.shape[1:]):
                raise ValidationError(f"infos[{key!r}]", f"per-step shape {tuple(target.shape[1:])}", describe(value))
            target[start : start + length] = value.to(target.dtype)
        for key, target in self.infos.items():
            if key not in infos:
                target[start : start + length] = 0

    def _new_slot(self) -> int:
        if self.num_slots >= self.unit_start.shape[0]:
            self._grow_units()
        self.num_slots += 1
        return self.num_slots - 1

    def _make_room(self, length: int, allow_retain: bool = True) -> int:
        """Free ``[tail, tail + length)`` (wrapping if needed) and return its start."""
        budget = self.eviction.rescue_budget * length if allow_retain else 0.0
        while True:
            if self.tail + length > self.capacity:
                # Not enough rows before the physical end: clear [tail, capacity) and wrap.
                stash: list[tuple[int, dict[str, Tensor]]] = []
                while self.order and int(self._v_start[self.order[0]]) >= self.tail:
                    slot = self.order.popleft()
                    size = int(self._v_length[slot])
                    if size <= budget and self.eviction.retain(self, slot):
                        budget -= size
                        stash.append((slot, self._read_rows(int(self._v_start[slot]), size)))
                        self._release_rows(slot)
                    else:
                        self._evict(slot)
                self.tail = 0
                for slot, rows in stash:
                    # Units retained across the wrap are written back first, as the newest.
                    start = self._make_room(int(self._v_length[slot]), allow_retain=False)
                    self._write_rows(start, rows)
                    self._place(slot, start)
                continue
            if self.order:
                slot = self.order[0]
                s = int(self._v_start[slot])
                if self.tail <= s < self.tail + length:
                    self.order.popleft()
                    size = int(self._v_length[slot])
                    if size <= budget and self.eviction.retain(self, slot):
                        budget -= size
                        self._move(slot, self.tail)
                    else:
                        self._evict(slot)
                    continue
            return self.tail

    def _read_rows(self, start: int, length: int) -> dict[str, Tensor]:
        return {name: t[start : start + length].clone() for name, t in self._row_tensors().items()}

    def _write_rows(self, start: int, rows: Mapping[str, Tensor]) -> None:
        self._ensure_rows(start + max((v.shape[0] for v in rows.values()), default=0))
        tensors = self._row_tensors()
        for name, value in rows.items():
            tensors[name][start : start + value.shape[0]] = value

    def _release_rows(self, slot: int) -> None:
        start, size = int(self._v_start[slot]), int(self._v_length[slot])
        self._v_row_slot[start : start + size] = -1
        self.mutations += 1
        for listener in self.listeners:
            listener.on_evict(start, size)

    def _place(self, slot: int, start: int) -> None:
        size = int(self._v_length[slot])
        self._v_start[slot] = start
        self._v_rescues[slot] += 1
        self._v_hits[slot] *= 0.5
        self._v_row_slot[start : start + size] = slot
        self.mutations += 1
        self.index.on_rows(self, start, size)
        self.order.append(slot)
        self.tail = start + size
        self.high_water = max(self.high_water, self.tail)
        for listener in self.listeners:
            listener.on_write(start, size)

    def _move(self, slot: int, dest: int) -> None:
        """Retain a unit: move its rows down to ``dest`` and make it the newest."""
        src, size = int(self._v_start[slot]), int(self._v_length[slot])
        if src != dest:
            self._ensure_rows(dest + size)
            for t in self._row_tensors().values():
                t[dest : dest + size] = t[src : src + size].clone()
            self._v_row_slot[src : src + size] = -1
            self.index.on_rows(self, dest, size)
            for listener in self.listeners:
                listener.on_move(src, dest, size)
        self._v_row_slot[dest : dest + size] = slot
        self._v_start[slot] = dest
        self._v_rescues[slot] += 1
        self._v_hits[slot] *= 0.5
        self.mutations += 1
        self.order.append(slot)
        self.tail = dest + size
        logger.debug("retained unit %d (%d rows)", int(self._v_id[slot]), size)

    def _evict(self, slot: int) -> None:
        start, size = int(self._v_start[slot]), int(self._v_length[slot])
        self._v_row_slot[start : start + size] = -1
        ret = float(self._v_return[slot])
        self._ret_sum -= ret
        self._ret_sq -= ret * ret
        self._v_alive[slot] = False
        self._dead[slot] = -np.inf
        self._v_id[slot] = -1
        self.mutations += 1
        self.num_transitions -= size
        self.free_slots.append(slot)
        self.index.remove(self, [slot])
        for listener in self.listeners:
            listener.on_evict(start, size)

    def __len__(self) -> int:
        return self.num_transitions

    @blas_limited
    def search(self, queries: Tensor, k: int, exact: bool | None = None) -> tuple[Tensor, Tensor]:
        """Top-``k`` units for each query embedding.

        Args:
            queries: ``[Q, embed_dim]`` L2-normalised query embeddings.
            k: Units per query.
            exact: ``True`` exact MaxSim, ``False`` the index's fast approximate path, ``None`` the
                index's default (exact for ``TorchIndex``, approximate for ``FaissIndex``).

        Returns:
            ``(scores, slots)``, each ``[Q, k']`` with ``k' = min(k, num_units)``, best first.
        """
        if self.num_units == 0:
            raise EmptyMemoryError("Cannot retrieve from an empty memory: add episodes first.")
        if queries.dim() != 2 or queries.shape[1] != self.embed_dim:
            raise DimensionMismatchError("queries", f"shape [Q, {self.embed_dim}]", describe(queries))
        return self.index.search(self, queries.float(), min(int(k), self.num_units), exact)

    @blas_limited
    def search_np(self, queries: np.ndarray, k: int, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` on numpy arrays (the hybrid sampler's path): ``(scores, slots)``, ``[Q, k']``."""
        if self.num_units == 0:
            raise EmptyMemoryError("Cannot retrieve from an empty memory: add episodes first.")
        if queries.ndim != 2 or queries.shape[1] != self.embed_dim:
            raise DimensionMismatchError("queries", f"shape [Q, {self.embed_dim}]", describe(queries))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        return self.index.search_np(self, queries, min(int(k), self.num_units), exact)

    def sample_rows(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` rows drawn uniformly over the stored transitions (rejection over the ring)."""
        return torch.from_numpy(self.sample_rows_np(n, generator))

    def sample_rows_np(self, n: int, generator: torch.Generator | None = None) -> np.ndarray:
        """:meth:`sample_rows` as a numpy array (same draws)."""
        if self.num_transitions == 0:
            raise EmptyMemoryError("Cannot sample from an empty memory: add episodes first.")
        gen = generator or self.generator
        hw = self.high_water
        if self.num_transitions == hw:  # no holes in [0, high_water): every row is live
            return torch.randint(0, hw, (n,), generator=gen).numpy()
        density = self.num_transitions / hw
        draw = int(n / density * 1.1) + 8
        out = []
        have = 0
        while have < n:
            cand = torch.randint(0, hw, (draw,), generator=gen).numpy()
            cand = cand[self._v_row_slot.take(cand) >= 0]
            out.append(cand)
            have += cand.size
        rows = out[0] if len(out) == 1 else np.concatenate(out)
        return rows[:n]

    def gather(self, rows: Tensor) -> dict[str, Any]:
        """Fields of the given rows: observations (tensor or dict), actions, rewards, flags, ..."""
        rows_np = np.ascontiguousarray(host_array(torch.as_tensor(rows)), dtype=np.int64)
        return {
            k: ({f: as_torch(x) for f, x in v.items()} if isinstance(v, dict) else as_torch(v))
            for k, v in self.gather_np(rows_np).items()
        }

    def gather_np(self, rows: np.ndarray) -> dict[str, Any]:
        """:meth:`gather` for numpy row indices; values are numpy arrays (torch tensors only for
        dtypes numpy cannot hold)."""

        def obs_of(bank: dict[str, Tensor], views: dict[str, np.ndarray | None]) -> Any:
            if self.layout.is_dict:
                return {k: take_rows(v, views[k], rows) for k, v in bank.items()}
            name = next(iter(bank))
            return take_rows(bank[name], views[name], rows)

        slots = self._v_row_slot.take(rows)
        return {
            "observations": obs_of(self.obs, self._v_obs),
            "actions": take_rows(self.actions, self._v_actions, rows),
            "rewards": self._v_rewards.take(rows),
            "next_observations": obs_of(self.next_obs, self._v_next_obs),
            "terminated": self._v_terminated.take(rows),
            "truncated": self._v_truncated.take(rows),
            "slots": slots,
            "episode_ids": self._v_id.take(slots),
        }

    def features(self, rows: Tensor, featurizer: StepFeaturizer) -> Tensor:
        """Encoder inputs for stored rows (context windows stay inside each row's unit)."""
        if featurizer.context == 1:
            obs = {k: v.index_select(0, rows) for k, v in self.obs.items()}
            return featurizer.step_features(
                obs if self.layout.is_dict else obs[next(iter(obs))],
                self.actions.index_select(0, rows),
                self.rewards.index_select(0, rows),
            )
        offsets = rows - self.unit_start[self.row_slot[rows]]
        lags = torch.arange(featurizer.context - 1, -1, -1)
        window = rows.unsqueeze(1) - torch.minimum(lags.unsqueeze(0), offsets.unsqueeze(1))
        flat = window.reshape(-1)
        obs = {k: v.index_select(0, flat) for k, v in self.obs.items()}
        steps = featurizer.step_features(
            obs if self.layout.is_dict else obs[next(iter(obs))],
            self.actions.index_select(0, flat),
            self.rewards.index_select(0, flat),
        )
        return steps.reshape(rows.numel(), featurizer.dim)
