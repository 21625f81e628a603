"""Minari datasets in and out of a hippogym memory.

:func:`memory_from_minari` turns a `Minari <https://minari.farama.org>`_ dataset (a loaded
``MinariDataset`` or a dataset id) into a :class:`~hippogym.HippocampalReplayBuffer`;
:func:`memory_to_minari` writes the units of a memory back out as a Minari dataset::

    from hippogym.integrations.minari import memory_from_minari, memory_to_minari

    buffer = memory_from_minari("corridor/expert-v0", consolidate_steps=200)
    dataset = memory_to_minari(buffer, "corridor/from-memory-v0", data_format="arrow")

What the conversion keeps, per Minari episode:

* all ``T + 1`` observations (Minari's convention: the last one follows the final step), so the
  last transition keeps its real bootstrap target;
* ``terminations`` and ``truncations`` as two distinct flags (a time limit never becomes a
  terminal state);
* Dict (and Tuple) observations, flattened to one array per leaf; nested keys are joined with
  ``"."`` (``{"a": {"b": x}}`` becomes ``"a.b"``), as everywhere in hippogym;
* discrete and continuous actions (Dict/Tuple action spaces are not supported);
* numeric per-step ``infos`` (all of them, or the ``info_keys`` asked for). Minari's data collector
  records ``T + 1`` info rows (the first from ``reset``); the reset row is dropped, so row ``t``
  is the info returned by step ``t``. Info keys that are missing from some episodes are stored as
  ``0`` for those;
* ``success`` from ``infos["is_success"]`` or ``infos["success"]`` at the last step, when present;
* the episode's Minari id as ``Episode.episode_id`` (segments of one episode share it).

The dataset is read in chunks of ``chunk_size`` episodes (``dataset.iterate_episodes`` per chunk),
so a dataset far larger than memory in Python objects converts in bounded memory: besides the
buffer itself, at most ``prefetch + 1`` chunks are held (a background thread reads ahead while the
current chunk is encoded).

Without a segmenter every Minari episode becomes one unit directly (the fast path: no per-step
Python loop). With one, each chunk is fed to the segmenter as a vector of streams (one
``add_batch`` call per time step for the whole chunk), and every unit it cuts is stored.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from hippogym.episode import Episode
from hippogym.errors import (
    EmptyMemoryError,
    MinariDatasetNotFoundError,
    MissingDependencyError,
    ValidationError,
    describe,
)
from hippogym.types import DEFAULT_EMBED_DIM

if TYPE_CHECKING:  # pragma: no cover
    import gymnasium as gym
    from minari import MinariDataset

    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer
    from hippogym.segmentation import Segmenter

__all__ = [
    "MinariDatasetNotFoundError",
    "check_dataset_id",
    "episode_from_minari",
    "load_minari_dataset",
    "make_segmenter",
    "memory_from_minari",
    "memory_to_minari",
]

logger = logging.getLogger(__name__)

_NUMERIC = "biuf"
_SUCCESS_KEYS = ("is_success", "success")
_DATA_FORMATS = ("hdf5", "arrow", "parquet")
_INCOMPLETE = ("keep", "drop", "error")
# Minari's id grammar, ``(namespace/)name-vN`` (minari.dataset.minari_dataset.DATASET_ID_RE), with
# the version required: Minari's own parser fails with a TypeError on ids without one.
_DATASET_ID_RE = re.compile(r"^(?:[-_\w][-_\w/]*[-_\w]+/)?[-_\w]+?-v\d+$")


# --------------------------------------------------------------------------- helpers


def _import_minari(purpose: str) -> Any:
    try:
        import minari
    except ImportError as exc:
        raise MissingDependencyError("minari", "minari", purpose) from exc
    return minari


def _datasets_root() -> Path:
    """Minari's local datasets directory (``MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def check_dataset_id(dataset_id: Any) -> str:
    """Return ``dataset_id`` if it is a well-formed Minari id (``(namespace/)name-vN``).

    Raises:
        ValidationError: It is not.
    """
    if not isinstance(dataset_id, str) or not _DATASET_ID_RE.match(dataset_id):
        raise ValidationError(
            "dataset_id",
            "a Minari dataset id of the form `(namespace/)name-vN`",
            describe(dataset_id),
            "For example 'D4RL/door/human-v2' or 'corridor/expert-v0'.",
        )
    return dataset_id


def _writable(arr: np.ndarray) -> np.ndarray:
    """``arr``, copied when read-only (Arrow buffers) so tensors may share its memory."""
    return arr if arr.flags.writeable else arr.copy()


def _leaf(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(name, "a numeric array", describe(value)) from exc
    if arr.dtype.kind not in _NUMERIC:
        raise ValidationError(
            name, "a numeric array (Text and other non-numeric spaces are not supported)", describe(value)
        )
    return _writable(arr)


def _flatten_obs(value: Any, name: str) -> np.ndarray | dict[str, np.ndarray]:
    """A Minari observation batch as one array, or a flat ``{"a.b": array}`` dict (Dict/Tuple)."""
    if not isinstance(value, (Mapping, tuple)):
        return _leaf(value, name)
    out: dict[str, np.ndarray] = {}

    def walk(item: Any, prefix: str) -> None:
        children = item.items() if isinstance(item, Mapping) else ((str(i), v) for i, v in enumerate(item))
        for key, child in children:
            path = f"{prefix}{key}"
            if isinstance(child, (Mapping, tuple)):
                walk(child, path + ".")
            elif path in out:
                raise ValidationError(f"{name} keys", "unique once nested keys are joined with '.'", repr(path))
            else:
                out[path] = _leaf(child, f"{name}[{path!r}]")

    walk(value, "")
    if not out:
        raise ValidationError(name, "a non-empty dict of arrays", "an empty dict")
    return {k: out[k] for k in sorted(out)}


def _flatten_infos(value: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    """Numeric info leaves as ``{"a.b": array}``; non-numeric ones are skipped.

    Minari's Arrow storage returns a nested info dict as an object array of per-step dicts; such
    arrays are turned back into one array per key.
    """
    if not isinstance(value, Mapping):
        return
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            _flatten_infos(item, path + ".", out)
            continue
        try:
            arr = np.asarray(item)
        except (TypeError, ValueError):
            continue
        if arr.dtype == object and arr.ndim == 1 and arr.size and all(isinstance(x, Mapping) for x in arr):
            keys = list(arr[0])
            try:
                _flatten_infos({k: np.asarray([row[k] for row in arr]) for k in keys}, path + ".", out)
            except (KeyError, TypeError, ValueError):
                pass
            continue
        if arr.dtype.kind in _NUMERIC and arr.ndim >= 1:
            out[path] = arr


class _Raw(NamedTuple):
    """One Minari episode as arrays (observations ``[T + 1, ...]``, the rest ``[T, ...]``)."""

    episode_id: int
    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, np.ndarray]
    success: bool | None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


def _raw_episode(data: Any, info_keys: Sequence[str] | None) -> _Raw:
    """Parse a ``minari.EpisodeData`` into arrays, checking Minari's conventions."""
    eid = int(data.id)
    where = f"Minari episode {eid}"
    rewards = _leaf(data.rewards, f"{where}: rewards").reshape(-1)
    steps = int(rewards.shape[0])
    if isinstance(data.actions, (Mapping, tuple)):
        raise ValidationError(
            f"{where}: actions", "an array (Box, Discrete, MultiDiscrete or MultiBinary action space)",
            describe(data.actions), "Dict and Tuple action spaces are not supported.",
        )
    actions = _leaf(data.actions, f"{where}: actions")
    observations = _flatten_obs(data.observations, f"{where}: observations")
    first = observations if isinstance(observations, np.ndarray) else next(iter(observations.values()))
    if first.ndim == 0 or first.shape[0] != steps + 1:
        raise ValidationError(
            f"{where}: observations", f"{steps + 1} rows (T + 1 for T={steps} steps, Minari's convention)",
            describe(first),
        )
    flat: dict[str, np.ndarray] = {}
    _flatten_infos(data.infos or {}, "", flat)
    success = None
    for key in _SUCCESS_KEYS:
        value = flat.get(key)
        if value is not None and value.shape[0] in (steps, steps + 1) and steps:
            success = bool(np.asarray(value[-1]).any())
            break
    infos: dict[str, np.ndarray] = {}
    for key, value in flat.items():
        if info_keys is not None and key not in info_keys:
            continue
        if value.shape[0] == steps + 1:
            value = value[1:]  # drop the reset info: row t is what step t returned
        elif value.shape[0] != steps:
            logger.debug("%s: info %r has %d rows (not per-step), skipped", where, key, value.shape[0])
            continue
        infos[key] = _writable(np.ascontiguousarray(value))
    return _Raw(
        eid, observations, actions, rewards,
        _leaf(data.terminations, f"{where}: terminations").reshape(-1).astype(bool, copy=False),
        _leaf(data.truncations, f"{where}: truncations").reshape(-1).astype(bool, copy=False),
        infos, success,
    )


def _episode(raw: _Raw) -> Episode:
    return Episode(
        states=raw.observations, actions=raw.actions, rewards=raw.rewards,
        terminated=raw.terminations, truncated=raw.truncations, infos=raw.infos or None,
        episode_id=raw.episode_id, start_step=0, success=raw.success,
    )


def episode_from_minari(data: Any, *, info_keys: Sequence[str] | None = None) -> Episode:
    """Convert one ``minari.EpisodeData`` into an :class:`~hippogym.Episode`.

    Args:
        data: An episode from ``MinariDataset.iterate_episodes()`` (or anything with the same
            fields: ``id``, ``observations``, ``actions``, ``rewards``, ``terminations``,
            ``truncations``, ``infos``).
        info_keys: Info keys to keep (flattened ``"a.b"`` names); ``None`` keeps every numeric
            per-step key.

    Returns:
        The episode, with ``T + 1`` observations, ``episode_id = data.id`` and ``success`` from
        ``infos["is_success"]`` / ``infos["success"]`` at the last step when present.

    Raises:
        ValidationError: Non-numeric observations, Dict/Tuple actions, observations that do not
            have ``T + 1`` rows, or anything :class:`~hippogym.Episode` rejects.
    """
    return _episode(_raw_episode(data, None if info_keys is None else tuple(info_keys)))


# --------------------------------------------------------------------------- segmenters


def make_segmenter(spec: str, info_keys: Sequence[str] = ()) -> Segmenter:
    """Build a segmenter from a short text spec (the CLI's ``--segmenter``).

    Args:
        spec: ``"terminal"`` (one unit per episode), ``"window:N"`` or ``"window:N:OVERLAP"``
            (:class:`~hippogym.segmentation.FixedWindowSegmenter`), ``"reward"``,
            ``"reward:THRESH"`` or ``"reward:THRESH:MIN_LENGTH"``
            (:class:`~hippogym.segmentation.RewardEventSegmenter`).
        info_keys: Info keys the segmenter records.

    Raises:
        ValidationError: The spec is not one of these forms.
    """
    from hippogym.segmentation import FixedWindowSegmenter, RewardEventSegmenter, TerminalSegmenter

    forms = "'terminal', 'window:N[:OVERLAP]' or 'reward[:THRESHOLD[:MIN_LENGTH]]'"
    if not isinstance(spec, str):
        raise ValidationError("segmenter", forms, describe(spec))
    kind, *args = spec.strip().lower().split(":")
    try:
        if kind == "terminal" and not args:
            return TerminalSegmenter(info_keys=info_keys)
        if kind == "window" and 1 <= len(args) <= 2:
            return FixedWindowSegmenter(int(args[0]), int(args[1]) if len(args) == 2 else 0, info_keys=info_keys)
        if kind == "reward" and len(args) <= 2:
            threshold = float(args[0]) if args else 0.0
            return RewardEventSegmenter(threshold, int(args[1]) if len(args) == 2 else 1, info_keys=info_keys)
    except ValueError as exc:  # int("x") / float("x"), or the segmenter's own range checks
        if isinstance(exc, ValidationError):
            raise ValidationError("segmenter", forms, repr(spec), str(exc)) from exc
        raise ValidationError("segmenter", forms, repr(spec)) from exc
    raise ValidationError("segmenter", forms, repr(spec))


def _segmenter_config(segmenter: Segmenter | None, info_keys: Sequence[str] | None) -> dict[str, Any]:
    if segmenter is None:
        return {"type": "MinariEpisodes", "info_keys": None if info_keys is None else list(info_keys)}
    config: dict[str, Any] = {"type": type(segmenter).__name__}
    for attr in ("n", "overlap", "threshold", "min_length"):
        value = getattr(segmenter, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            config[attr] = value
    config["info_keys"] = list(segmenter.info_keys)
    return config


def _rows(obs: np.ndarray | dict[str, np.ndarray], streams: np.ndarray, t: int) -> Any:
    """Step ``t`` of the given streams of a padded ``[streams, steps, ...]`` observation table."""
    if isinstance(obs, dict):
        return {k: v[streams, t] for k, v in obs.items()}
    return obs[streams, t]


def _segment_chunk(segmenter: Segmenter, raws: list[_Raw]) -> list[Episode]:
    """Feed a chunk of episodes to ``segmenter`` as parallel streams; return its units in order.

    Episode ``i`` of the chunk is stream ``i``; each time step of the chunk is one ``add_batch``
    call over the episodes still running. Episodes that end without a terminal/truncation flag are
    flushed at their last step (the segment then ends with neither flag, as in Minari).
    """
    size = len(raws)
    lengths = np.array([len(r) for r in raws], dtype=np.int64)
    horizon = int(lengths.max())
    obs0 = raws[0].observations

    def padded(get: Any, steps: int) -> np.ndarray:
        first = get(raws[0])
        out = np.zeros((size, steps, *first.shape[1:]), dtype=first.dtype)
        for i, r in enumerate(raws):
            value = get(r)
            if value.shape[1:] != first.shape[1:]:
                raise ValidationError(
                    f"Minari episode {r.episode_id}", f"per-step shape {first.shape[1:]} as in episode {raws[0].episode_id}",
                    describe(value),
                )
            out[i, : value.shape[0]] = value
        return out

    if isinstance(obs0, dict):
        obs: Any = {k: padded(lambda r, k=k: r.observations[k], horizon + 1) for k in obs0}
    else:
        obs = padded(lambda r: r.observations, horizon + 1)
    actions = padded(lambda r: r.actions, horizon)
    rewards = padded(lambda r: r.rewards, horizon)
    terminated = padded(lambda r: r.terminations, horizon)
    truncated = padded(lambda r: r.truncations, horizon)
    info_names = sorted({k for r in raws for k in r.infos})
    infos, present = {}, {}
    for key in info_names:
        ref = next(r.infos[key] for r in raws if key in r.infos)
        table = np.zeros((size, horizon, *ref.shape[1:]), dtype=ref.dtype)
        mask = np.zeros(size, dtype=bool)
        for i, r in enumerate(raws):
            if key in r.infos:
                table[i, : len(r)] = r.infos[key]
                mask[i] = True
        infos[key], present[key] = table, mask
    success = np.array([bool(r.success) for r in raws])
    success_known = np.array([r.success is not None for r in raws])
    if info_names:
        segmenter.info_keys = tuple(dict.fromkeys((*segmenter.info_keys, *info_names)))

    out: list[Episode] = []
    for t in range(horizon):
        active = np.flatnonzero(lengths > t)
        last = lengths[active] == t + 1
        step_infos: dict[str, Any] = {k: infos[k][active, t] for k in info_names}
        for k in info_names:
            step_infos[f"_{k}"] = present[k][active]
        if "is_success" not in info_names:
            # The outcome (from infos["success"]) where the segmenter reads it: the last step.
            step_infos["is_success"] = success[active]
            step_infos["_is_success"] = success_known[active] & last
        out.extend(segmenter.add_batch(
            _rows(obs, active, t), actions[active, t], rewards[active, t], terminated[active, t],
            truncated[active, t], _rows(obs, active, t + 1), infos=step_infos, streams=active,
        ))
        open_ended = active[last & ~(terminated[active, t] | truncated[active, t])]
        for s in open_ended.tolist():
            out.extend(segmenter.flush(s))
            segmenter.reset(s)
    if not out:
        return out
    # The segmenter numbers environment episodes itself, in stream order from the first step of
    # the chunk: map its ids back to the Minari ids and order units by episode, then by step.
    base = min(ep.episode_id for ep in out if ep.episode_id is not None)
    fixed = []
    for ep in out:
        pos = int(ep.episode_id) - base
        eid = raws[pos].episode_id
        fixed.append((pos, ep.start_step, ep if ep.episode_id == eid else dataclasses.replace(ep, episode_id=eid)))
    fixed.sort(key=lambda item: (item[0], item[1]))
    return [ep for _, _, ep in fixed]


# --------------------------------------------------------------------------- Minari -> memory


def load_minari_dataset(dataset_id: str, *, download: bool = False) -> MinariDataset:
    """Load a Minari dataset by id from the local datasets directory, optionally downloading it.

    Args:
        dataset_id: ``"(namespace/)name-vN"``.
        download: Download the dataset (``minari.load_dataset(id, download=True)``) when it is not
            present locally.

    Raises:
        MissingDependencyError: ``minari`` (or the storage backend, e.g. ``h5py``) is missing.
        ValidationError: The id is malformed.
        MinariDatasetNotFoundError: Not present locally and ``download`` is ``False``.
    """
    minari = _import_minari("Loading a Minari dataset")
    check_dataset_id(dataset_id)
    try:
        return minari.load_dataset(dataset_id, download=download)
    except FileNotFoundError as exc:
        raise MinariDatasetNotFoundError(
            f"No Minari dataset {dataset_id!r} in the local datasets directory {_datasets_root()} "
            "(MINARI_DATASETS_PATH, default ~/.minari/datasets). Download it with "
            f"`minari download {dataset_id}`, or pass download=True "
            f"(`hippogym convert {dataset_id} OUT --download`)."
        ) from exc
    except ImportError as exc:
        package = getattr(exc, "name", None) or "h5py"
        raise MissingDependencyError(package, "minari", f"Reading the Minari dataset {dataset_id!r}") from exc


def _read_chunks(
    dataset: Any, indices: np.ndarray, chunk_size: int, info_keys: Sequence[str] | None, as_episodes: bool
) -> Iterator[tuple[list[Any], int, int]]:
    """Per chunk of ``chunk_size`` episodes: the parsed episodes (``Episode`` objects, or raw
    arrays for a segmenter), their number of steps, and how many empty episodes were skipped."""
    for lo in range(0, indices.size, chunk_size):
        raws, empty = [], 0
        for data in dataset.iterate_episodes(episode_indices=indices[lo : lo + chunk_size].tolist()):
            raw = _raw_episode(data, info_keys)
            if len(raw) == 0:
                empty += 1
            else:
                raws.append(raw)
        steps = sum(len(r) for r in raws)
        yield ([_episode(r) for r in raws] if as_episodes else raws), steps, empty


class _Failure(NamedTuple):
    error: BaseException


def _prefetched(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead, in order.

    Reading (h5py, pyarrow, numpy) and encoding (torch) both release the GIL for their heavy
    parts, so the next chunk is read while the current one is encoded. An exception in the
    reader is re-raised here; closing this generator stops the reader.
    """
    import queue
    import threading

    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="hippogym-minari-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=10.0)


def _default_capacity(total_steps: int, total_episodes: int, segmenter: Segmenter | None) -> int:
    """Rows needed for the whole dataset (overlapping windows store their shared steps twice)."""
    capacity = total_steps
    overlap = int(getattr(segmenter, "overlap", 0) or 0)
    n = getattr(segmenter, "n", None)
    if overlap and n:
        capacity += overlap * (math.ceil(total_steps / max(int(n) - overlap, 1)) + total_episodes)
    return max(int(capacity), 1)


def _space_json_ok(space: Any) -> bool:
    import hippo_format

    try:
        hippo_format.space_to_json(space)
    except Exception:  # noqa: BLE001 - any space the format cannot describe is simply not recorded
        return False
    return True


def memory_from_minari(
    dataset: MinariDataset | str,
    *,
    buffer: HippocampalReplayBuffer | None = None,
    segmenter: Segmenter | str | None = None,
    capacity: int | None = None,
    embed_dim: int = DEFAULT_EMBED_DIM,
    consolidate_steps: int = 0,
    consolidate_batch_size: int = 64,
    download: bool = False,
    chunk_size: int = 64,
    progress: bool = True,
    seed: int | None = None,
    info_keys: Sequence[str] | None = None,
    prefetch: int = 2,
    **buffer_kwargs: Any,
) -> HippocampalReplayBuffer:
    """Build (or fill) a hippogym memory from a Minari dataset.

    Args:
        dataset: A loaded ``minari.MinariDataset`` (a filtered one too: only its
            ``episode_indices`` are read) or a dataset id, loaded with ``minari.load_dataset``.
        buffer: Add to this buffer instead of creating one (``capacity``, ``embed_dim``, ``seed``
            and ``buffer_kwargs`` are then not used).
        segmenter: ``None`` (default: one unit per Minari episode, the fast path), a
            :class:`~hippogym.segmentation.Segmenter` (it must have nothing pending; its
            ``info_keys`` are extended with the info keys kept), or a spec for
            :func:`make_segmenter` such as ``"window:32"``.
        capacity: Transitions the new buffer holds (default: enough for the whole dataset,
            counting the steps that overlapping windows repeat).
        embed_dim: Key width of the new buffer.
        consolidate_steps: Consolidation steps to run once everything is stored (0 = none).
        consolidate_batch_size: Batch size of those steps.
        download: Download a dataset id that is not present locally.
        chunk_size: Episodes read (and segmented) at a time.
        progress: Show a progress bar (only on a terminal).
        seed: Seed of the new buffer (sampling, initial encoder weights) and of the consolidator.
        info_keys: Info keys to keep (flattened ``"a.b"`` names); ``None`` keeps every numeric
            per-step key.
        prefetch: Chunks read ahead in a background thread while the current one is encoded
            (``0``: read in the calling thread). At most ``prefetch + 1`` chunks are held at once.
        **buffer_kwargs: Further :class:`~hippogym.HippocampalReplayBuffer` arguments
            (``mixture_ratio``, ``semantic``, ``sampler``, ``features``, ``encoder``, ...), and
            ``memory``: a :class:`~hippogym.MemoryStore` to fill instead of a new one (then
            without ``capacity``; ``embed_dim`` is not used), e.g.
            ``memory=MemoryStore(embed_dim=64, capacity=50_000, eviction="fifo")``.

    Returns:
        The buffer. It also carries ``buffer.provenance`` (``source``, ``dataset_id``,
        ``env_id``, ``env_spec`` (the spec as JSON), ``minari_version``,
        ``dataset_minari_version``, ``data_format``, ``algorithm_name``, ``total_steps``,
        ``total_episodes``, counts of what was converted, the consolidation steps, and
        ``datasets`` once several datasets were added to one buffer), ``buffer.spaces`` (the
        dataset's observation and action spaces) and ``buffer.segmenter_config``;
        :meth:`~hippogym.HippocampalReplayBuffer.save` writes all three into the manifest.

    Raises:
        MissingDependencyError: ``minari`` is not installed.
        MinariDatasetNotFoundError: A dataset id is not present locally and ``download`` is off.
        ValidationError: Bad arguments, or data the memory cannot hold (see
            :func:`episode_from_minari`).
        CapacityError: An episode (unit) is longer than the buffer's capacity.
    """
    from tqdm.auto import tqdm

    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer
    from hippogym.replay.defaults import build_default_consolidator
    from hippogym.replay.ingest import EpisodeIngestor
    from hippogym.replay.settings import pop_legacy
    from hippogym.segmentation import Segmenter

    minari = _import_minari("Converting a Minari dataset into a memory")
    if isinstance(dataset, str):
        dataset = load_minari_dataset(dataset, download=download)
    elif not isinstance(dataset, minari.MinariDataset):
        raise ValidationError("dataset", "a minari.MinariDataset or a dataset id", describe(dataset))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValidationError("chunk_size", "an int >= 1 (episodes per chunk)", describe(chunk_size))
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValidationError("prefetch", "an int >= 0 (chunks read ahead)", describe(prefetch))
    for name, value, low in (("consolidate_steps", consolidate_steps, 0), ("consolidate_batch_size", consolidate_batch_size, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(name, f"an int >= {low}", describe(value))
    if info_keys is not None:
        if isinstance(info_keys, str) or not isinstance(info_keys, Sequence):
            raise ValidationError("info_keys", "a sequence of info keys or None", describe(info_keys))
        info_keys = tuple(str(k) for k in info_keys)
    if isinstance(segmenter, str):
        segmenter = make_segmenter(segmenter)
    elif segmenter is not None and not isinstance(segmenter, Segmenter):
        raise ValidationError("segmenter", "a hippogym Segmenter, a spec such as 'window:32', or None", describe(segmenter))
    if segmenter is not None:
        if segmenter.pending():
            raise ValidationError(
                "segmenter", "a segmenter with nothing pending", f"{segmenter.pending()} pending steps",
                "Flush or reset it first (segmenter.flush() / segmenter.reset()).",
            )
        segmenter.reset()  # episodes left in progress by a flush: the dataset starts new ones

    indices = np.asarray(dataset.episode_indices, dtype=np.int64)
    total_steps = int(dataset.total_steps)
    if indices.size == 0 or total_steps == 0:
        raise ValidationError("dataset", "a Minari dataset with at least one step", f"{dataset.id!r} with {total_steps} steps")
    if buffer is None:
        store_kwargs = pop_legacy(buffer_kwargs, "memory")  # eviction=, index=, key_dtype= (deprecated)
        memory = buffer_kwargs.pop("memory", None)
        if memory is None:
            if capacity is None:
                capacity = _default_capacity(total_steps, int(indices.size), segmenter)
            width = getattr(buffer_kwargs.get("encoder"), "embed_dim", embed_dim)
            memory = MemoryStore(embed_dim=width, capacity=capacity, seed=seed, **store_kwargs)
        elif capacity is not None or store_kwargs:
            given = sorted([*store_kwargs, *(["capacity"] if capacity is not None else [])])
            raise ValidationError("memory", "the only memory setting (no memory arguments alongside it)", f"also {given}")
        buffer = HippocampalReplayBuffer(memory, seed=seed, **buffer_kwargs)
    else:
        if not isinstance(buffer, HippocampalReplayBuffer):
            raise ValidationError("buffer", "a hippogym.HippocampalReplayBuffer or None", describe(buffer))
        if buffer_kwargs or capacity is not None:
            given = sorted([*buffer_kwargs, *(["capacity"] if capacity is not None else [])])
            raise ValidationError("buffer", "the only buffer setting (no buffer arguments alongside it)", f"also {given}")
        free = buffer.memory.capacity - len(buffer)
        if free < total_steps:
            logger.warning(
                "The buffer has room for %d more transitions but %r holds %d: older units will be evicted.",
                free, dataset.id, total_steps,
            )

    env_spec = dataset.env_spec
    logger.info("converting Minari dataset %r: %d episodes, %d steps", dataset.id, indices.size, total_steps)
    episodes = transitions = units = skipped = 0
    ingest = EpisodeIngestor(buffer)  # unit by unit, as they are read (same keys as add_episode)
    chunks = _read_chunks(dataset, indices, chunk_size, info_keys, as_episodes=segmenter is None)
    if prefetch:
        chunks = _prefetched(chunks, prefetch)
    bar = tqdm(total=total_steps, unit="step", desc=f"minari {dataset.id}", disable=None if progress else True, leave=False)
    try:
        for items, steps, empty in chunks:
            skipped += empty
            if not items:
                continue
            if segmenter is None:
                for ep in items:
                    ingest.put([ep])
                units += len(items)
            else:
                for ep in _segment_chunk(segmenter, items):
                    ingest.put([ep])
                    units += 1
            episodes += len(items)
            transitions += steps
            bar.update(steps)
    finally:
        bar.close()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if skipped:
        logger.warning("%d empty Minari episodes (no steps) were skipped.", skipped)
    logger.info("stored %d episodes (%d transitions) as %d units", episodes, transitions, units)

    if consolidate_steps and buffer.memory.num_transitions >= 2:
        if buffer.consolidator is None and seed is not None:
            buffer.consolidator = build_default_consolidator(buffer.encoder, seed, buffer.consolidator_kwargs)
        buffer.consolidate(steps=consolidate_steps, batch_size=consolidate_batch_size)

    metadata = getattr(dataset.storage, "metadata", {}) or {}
    env_spec_json = None
    if env_spec is not None:
        try:
            env_spec_json = env_spec.to_json()
        except Exception:  # noqa: BLE001 - kwargs that JSON cannot hold: keep the id only
            logger.debug("the env spec of %r cannot be serialised; keeping its id only", dataset.id)
    provenance: dict[str, Any] = dict(getattr(buffer, "provenance", None) or {})
    previous = provenance.get("dataset_id")
    provenance.update(
        source="minari",
        dataset_id=str(dataset.id),
        env_id=None if env_spec is None else str(env_spec.id),
        env_spec=env_spec_json,
        minari_version=str(minari.__version__),
        dataset_minari_version=str(dataset.minari_version),
        data_format=metadata.get("data_format"),
        algorithm_name=metadata.get("algorithm_name"),
        total_steps=total_steps,
        total_episodes=int(indices.size),
        episodes_converted=episodes,
        transitions_converted=transitions,
        units_converted=units,
        consolidate_steps=int(consolidate_steps),
    )
    if previous and previous != provenance["dataset_id"]:
        provenance["datasets"] = [*provenance.get("datasets", [previous]), provenance["dataset_id"]]
    buffer.provenance = {k: v for k, v in provenance.items() if v is not None}
    spaces = {"observation_space": dataset.observation_space, "action_space": dataset.action_space}
    if not getattr(buffer, "spaces", None) and all(_space_json_ok(s) for s in spaces.values()):
        buffer.spaces = spaces
    if not getattr(buffer, "segmenter_config", None):
        buffer.segmenter_config = _segmenter_config(segmenter, info_keys)
    return buffer


# --------------------------------------------------------------------------- memory -> Minari


def _resolve_store(memory: Any) -> tuple[MemoryStore, Any]:
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer

    if isinstance(memory, HippocampalReplayBuffer):
        return memory.memory, memory
    if isinstance(memory, MemoryStore):
        return memory, None
    raise ValidationError("buffer_or_store", "a hippogym HippocampalReplayBuffer or MemoryStore", describe(memory))


class _Piece(NamedTuple):
    slot: int
    skip: int  # leading rows already covered by the previous unit (overlapping windows)


def _plan_runs(store: MemoryStore) -> list[list[_Piece]]:
    """Group stored units into whole (or as whole as memory still holds) environment episodes.

    Units that share an ``episode_id`` are sorted by ``start_step`` and chained while each one
    continues the previous: it starts at or before the previous one's end and goes past it, its
    observation at the junction equals the previous one's last next observation, and the previous
    one did not end the episode (terminated or truncated). Anything else (a gap left by eviction, a
    duplicate) starts a new run. Units without an ``episode_id`` are runs of their own.
    """
    order = list(store.order)
    start = store.unit_start.numpy()
    length = store.unit_length.numpy()
    source = store.unit_source.numpy()
    first_step = store.unit_start_step.numpy()
    added = store.unit_added.numpy()
    term, trunc = store.terminated, store.truncated

    def ended(slot: int) -> bool:
        last = int(start[slot] + length[slot] - 1)
        return bool(term[last]) or bool(trunc[last])

    def continues(prev: int, slot: int, skip: int) -> bool:
        prev_last = int(start[prev] + length[prev] - 1)
        row = int(start[slot]) + skip
        return all(torch.equal(store.next_obs[k][prev_last], store.obs[k][row]) for k in store.obs)

    groups: dict[int, list[int]] = {}
    loose: list[int] = []
    for slot in order:
        src = int(source[slot])
        if src < 0:
            loose.append(slot)
        else:
            groups.setdefault(src, []).append(slot)
    runs: list[tuple[tuple[int, int, int], list[_Piece]]] = []
    for src in sorted(groups):
        slots = sorted(groups[src], key=lambda s: (int(first_step[s]), int(added[s])))
        current: list[_Piece] = []
        end = 0
        for slot in slots:
            s, n = int(first_step[slot]), int(length[slot])
            if current:
                prev = current[-1].slot
                skip = end - s
                if 0 <= skip < n and not ended(prev) and continues(prev, slot, skip):
                    current.append(_Piece(slot, skip))
                    end = s + n
                    continue
                runs.append(((0, src, int(first_step[current[0].slot])), current))
            current, end = [_Piece(slot, 0)], s + n
        if current:
            runs.append(((0, src, int(first_step[current[0].slot])), current))
    for slot in loose:
        runs.append(((1, int(added[slot]), 0), [_Piece(slot, 0)]))
    runs.sort(key=lambda item: item[0])
    return [pieces for _, pieces in runs]


def _is_complete(store: MemoryStore, run: list[_Piece]) -> bool:
    first, last = run[0].slot, run[-1].slot
    row = int(store.unit_start[last] + store.unit_length[last] - 1)
    return int(store.unit_start_step[first]) == 0 and (bool(store.terminated[row]) or bool(store.truncated[row]))


def _infer_spaces(store: MemoryStore) -> tuple[Any, Any]:
    """Observation and action spaces that describe what the memory holds (unbounded Boxes)."""
    import gymnasium as gym

    def box(shape: tuple[int, ...], dtype: np.dtype) -> Any:
        if dtype == np.bool_:
            return gym.spaces.Box(False, True, shape, np.bool_)
        if dtype == np.uint8:
            return gym.spaces.Box(0, 255, shape, np.uint8)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return gym.spaces.Box(info.min, info.max, shape, dtype)
        return gym.spaces.Box(-np.inf, np.inf, shape, dtype)

    fields = {f.name: box(tuple(f.shape), np.dtype(str(f.dtype).replace("torch.", ""))) for f in store.layout.fields}
    if store.layout.is_dict:
        nested: dict[str, Any] = {}
        for name, space in fields.items():
            node = nested
            *parents, leaf = name.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = space

        def build(node: dict[str, Any]) -> Any:
            return gym.spaces.Dict({k: build(v) if isinstance(v, dict) else v for k, v in node.items()})

        obs_space = build(nested)
    else:
        obs_space = next(iter(fields.values()))
    action_shape = tuple(store.action_shape)
    action_dtype = np.dtype(str(store.action_dtype).replace("torch.", ""))
    if action_dtype.kind in "iu" and int(np.prod(action_shape, dtype=np.int64)) == 1:
        rows, _ = store.rows_of(store.live_slots())
        values = store.actions.index_select(0, rows).reshape(-1)
        low, high = int(values.min()), int(values.max())
        start = min(low, 0)
        action_space = gym.spaces.Discrete(high - start + 1, start=start)
    elif action_dtype.kind in "iu":
        rows, _ = store.rows_of(store.live_slots())
        high = int(store.actions.index_select(0, rows).max())
        action_space = gym.spaces.MultiDiscrete(np.full(action_shape, high + 1, dtype=np.int64))
    else:
        action_space = box(action_shape, action_dtype)
    return obs_space, action_space


def _to_space(value: np.ndarray, space: Any, name: str) -> np.ndarray:
    """Cast and reshape ``[N, ...]`` data to a (non-composite) space's per-step form."""
    import gymnasium as gym

    rows = value.shape[0]
    if isinstance(space, gym.spaces.Discrete):
        if int(np.prod(value.shape[1:], dtype=np.int64)) != 1:
            raise ValidationError(name, f"one value per step for {space}", describe(value))
        return value.reshape(rows).astype(space.dtype, copy=False)
    shape = tuple(getattr(space, "shape", None) or ())
    if shape and value.shape[1:] != shape:
        if int(np.prod(value.shape[1:], dtype=np.int64)) != int(np.prod(shape, dtype=np.int64)):
            raise ValidationError(name, f"per-step shape {shape} (from {space})", describe(value))
        value = value.reshape(rows, *shape)
    dtype = getattr(space, "dtype", None)
    return value if dtype is None else value.astype(dtype, copy=False)


def _structure(flat: Mapping[str, np.ndarray] | np.ndarray, space: Any, name: str) -> Any:
    """Rebuild Minari's nested form (dict/tuple of arrays) of an observation batch from flat keys."""
    import gymnasium as gym

    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        if not isinstance(flat, Mapping):
            raise ValidationError(name, f"a Dict observation matching {space}", describe(flat))
        items = space.spaces.items() if isinstance(space, gym.spaces.Dict) else ((str(i), s) for i, s in enumerate(space.spaces))
        out = {}
        for key, sub in items:
            if key in flat:
                out[key] = _to_space(flat[key], sub, f"{name}[{key!r}]")
                continue
            prefix = key + "."
            inner = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
            if not inner:
                raise ValidationError(name, f"a key {key!r} (from {space})", f"keys {sorted(flat)}")
            out[key] = _structure(inner, sub, f"{name}[{key!r}]")
        return out if isinstance(space, gym.spaces.Dict) else tuple(out.values())
    if isinstance(flat, Mapping):
        raise ValidationError(name, f"one array matching {space}", describe(flat))
    return _to_space(flat, space, name)


def _nest(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``{"a.b": x}`` as ``{"a": {"b": x}}``; a key that would clash with another stays flat."""
    out: dict[str, Any] = {}
    for name in sorted(flat, key=lambda k: k.count(".")):
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                node = None
                break
            node = child
        if node is None or leaf in node:
            out[name] = flat[name]
        else:
            node[leaf] = flat[name]
    return out


def _cat(parts: list[tuple[Episode, int]], get: Any) -> torch.Tensor:
    """``get(unit)`` of each unit of a run, minus the leading rows it shares with the previous one."""
    return torch.cat([get(ep)[skip:] for ep, skip in parts], dim=0)


def _episode_buffers(
    store: MemoryStore, runs: list[list[_Piece]], obs_space: Any, action_space: Any,
    include_infos: bool, nested_infos: bool, bar: Any,
) -> Iterator[Any]:
    """Yield one ``minari.EpisodeBuffer`` per run, stitched from its units (streamed)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    is_dict = store.layout.is_dict
    for index, run in enumerate(runs):
        parts = [(store.unit_episode(p.slot), p.skip) for p in run]
        last = parts[-1][0]
        if is_dict:
            obs = {
                k: torch.cat([_cat(parts, lambda e, k=k: e.states[k]), last.next_states[k][-1:]], dim=0).numpy()
                for k in last.states
            }
        else:
            obs = torch.cat([_cat(parts, lambda e: e.states), last.next_states[-1:]], dim=0).numpy()
        actions = _cat(parts, lambda e: e.actions).numpy()
        steps = actions.shape[0]
        infos: dict[str, Any] = {}
        if include_infos:
            names = sorted({k for ep, _ in parts for k in (ep.infos or {})})
            for key in names:
                ref = next(ep.infos[key] for ep, _ in parts if ep.infos and key in ep.infos)

                def info(ep: Episode, key: str = key, ref: torch.Tensor = ref) -> torch.Tensor:
                    if ep.infos and key in ep.infos:
                        return ep.infos[key]
                    return torch.zeros((len(ep), *ref.shape[1:]), dtype=ref.dtype)

                per_step = _cat(parts, info).numpy()
                # Minari's collector convention: T + 1 info rows, the first from reset (unknown here).
                infos[key] = np.concatenate([np.zeros((1, *per_step.shape[1:]), dtype=per_step.dtype), per_step])
            if last.success is not None and not any(k in infos for k in _SUCCESS_KEYS):
                flag = np.zeros(steps + 1, dtype=bool)
                flag[-1] = last.success
                infos["success"] = flag
            if not nested_infos:
                # Minari's Arrow storage cannot read back nested info dicts nor 1-D info arrays:
                # keys stay flat ("a.b") and 1-D columns go in as lists.
                infos = {k: (v.tolist() if v.ndim == 1 else v) for k, v in infos.items()}
            else:
                infos = _nest(infos)
        yield EpisodeBuffer(
            id=index,
            observations=_structure(obs, obs_space, "observations"),
            actions=_to_space(actions, action_space, "actions"),
            rewards=_cat(parts, lambda e: e.rewards).numpy(),
            terminations=_cat(parts, lambda e: e.terminated).numpy(),
            truncations=_cat(parts, lambda e: e.truncated).numpy(),
            infos=infos or None,
        )
        bar.update(steps)


def memory_to_minari(
    buffer_or_store: HippocampalReplayBuffer | MemoryStore,
    dataset_id: str,
    *,
    env: str | gym.Env | None = None,
    algorithm_name: str | None = None,
    author: str | None = None,
    description: str | None = None,
    data_format: str = "hdf5",
    observation_space: Any = None,
    action_space: Any = None,
    incomplete: str = "keep",
    include_infos: bool = True,
    jpeg_encoding: bool = False,
    progress: bool = True,
    **dataset_kwargs: Any,
) -> MinariDataset:
    """Export the units of a memory as a new local Minari dataset.

    Minari episodes are whole environment episodes with ``T + 1`` observations, so units that are
    segments of one environment episode (same ``episode_id``, consecutive ``start_step``, e.g. cut
    by a :class:`~hippogym.segmentation.FixedWindowSegmenter`, overlapping or not) are stitched back
    together first: sorted by ``start_step``, each one continues the previous when it starts at or
    before the previous one's end, its observation there equals the previous one's last next
    observation, and the previous one did not terminate or truncate. Where memory no longer holds
    a piece (eviction), the parts around the gap become separate episodes; ``incomplete`` decides
    what happens to such partial episodes (those that do not start at step 0 or do not end with a
    terminal or truncation flag). Units without an ``episode_id`` are episodes of their own.

    Episodes are written in order of ``episode_id`` and renumbered ``0..N-1`` (Minari requires
    sequential ids); they are generated one at a time, so the export streams. Rewards are the
    memory's ``float32``. Per-step infos are written with Minari's collector convention of
    ``T + 1`` rows whose first row (the reset info, which memory does not keep) is zero; a known
    ``success`` flag is written as ``infos["success"]`` when no success key is there already.

    Args:
        buffer_or_store: A :class:`~hippogym.HippocampalReplayBuffer` or a
            :class:`~hippogym.MemoryStore`.
        dataset_id: New dataset id, ``"(namespace/)name-vN"`` (Minari never overwrites one).
        env: Environment id, ``gymnasium.Env`` or ``EnvSpec`` recorded as the dataset's
            environment. Default: the environment recorded in the memory's provenance by
            :func:`memory_from_minari` (``provenance["env_spec"]``, id and kwargs) when it can be
            made, else none.
        algorithm_name: Recorded in the dataset metadata.
        author: Recorded in the dataset metadata.
        description: Recorded in the dataset metadata (default: a line naming the memory).
        data_format: ``"hdf5"`` (default), ``"arrow"`` or ``"parquet"``.
        observation_space: Override the observation space. Default: ``buffer.spaces`` (kept by
            :func:`memory_from_minari` and by save/load), else the environment's, else one
            inferred from the stored arrays (unbounded ``Box`` per key).
        action_space: Same for actions (integer actions are inferred as ``Discrete``).
        incomplete: ``"keep"`` (default: write partial episodes as they are), ``"drop"`` or
            ``"error"``.
        include_infos: Write the stored per-step infos.
        jpeg_encoding: Let Minari JPEG-encode image observations (lossy). Off by default so the
            export is exact.
        progress: Show a progress bar (only on a terminal).
        **dataset_kwargs: Passed to ``minari.create_dataset_from_buffers`` (``author_email``,
            ``code_permalink``, ``eval_env``, ``requirements``, ...).

    Returns:
        The new ``minari.MinariDataset``.

    Raises:
        MissingDependencyError: ``minari`` is not installed.
        EmptyMemoryError: The memory holds no units.
        ValidationError: Bad arguments, an id that exists already, partial episodes with
            ``incomplete="error"``, or data that does not fit the spaces.
    """
    import gymnasium as gym
    from tqdm.auto import tqdm

    minari = _import_minari("Exporting a memory as a Minari dataset")
    store, buffer = _resolve_store(buffer_or_store)
    check_dataset_id(dataset_id)
    if data_format not in _DATA_FORMATS:
        raise ValidationError("data_format", f"one of {list(_DATA_FORMATS)}", repr(data_format))
    if incomplete not in _INCOMPLETE:
        raise ValidationError("incomplete", f"one of {list(_INCOMPLETE)}", repr(incomplete))
    if store.num_units == 0 or not store.allocated:
        raise EmptyMemoryError("Cannot export an empty memory as a Minari dataset: add episodes first.")
    target = _datasets_root() / dataset_id
    if target.exists():
        raise ValidationError(
            "dataset_id", "the id of a new dataset (Minari never overwrites one)",
            f"{dataset_id!r}, which exists at {target}",
            f"Delete it with minari.delete_dataset({dataset_id!r}) or bump the version.",
        )

    provenance = dict(getattr(buffer, "provenance", None) or {})
    made_env = None
    if env is None and provenance.get("env_spec"):
        # The environment the source dataset recorded (id and kwargs), when it can still be made.
        try:
            spec = gym.envs.registration.EnvSpec.from_json(str(provenance["env_spec"]))
            if spec.id.startswith("hippogym/"):
                from hippogym.envs import register_envs

                register_envs()
            made_env = env = gym.make(spec)
        except Exception as exc:  # noqa: BLE001 - the env is optional metadata
            logger.warning("Cannot make %r (%s); the dataset records no environment.", provenance.get("env_id"), exc)
            env = None
    elif isinstance(env, str) and env.startswith("hippogym/"):
        from hippogym.envs import register_envs

        register_envs()
    if env is not None and not isinstance(env, (str, gym.Env, gym.envs.registration.EnvSpec)):
        raise ValidationError("env", "an environment id, a gymnasium.Env or an EnvSpec", describe(env))

    runs = _plan_runs(store)
    partial = [run for run in runs if not _is_complete(store, run)]
    if partial:
        if incomplete == "error":
            raise ValidationError(
                "memory", "whole episodes only (incomplete='error')",
                f"{len(partial)} of {len(runs)} episodes that do not start at step 0 or do not end "
                "terminated/truncated (segments evicted, or recorded mid-episode)",
            )
        if incomplete == "drop":
            keep = {id(run) for run in runs} - {id(run) for run in partial}
            runs = [run for run in runs if id(run) in keep]
            logger.info("dropping %d partial episodes", len(partial))
        else:
            logger.info("%d of %d exported episodes are partial (kept as they are)", len(partial), len(runs))
    if not runs:
        raise EmptyMemoryError("No whole episode left to export (incomplete='drop' dropped every one).")

    inferred_obs, inferred_act = (None, None)
    saved = getattr(buffer, "spaces", None) or {}
    env_spaces = None
    if env is not None:
        probe = env if isinstance(env, gym.Env) else None
        if probe is None:
            probe = made_env = env = gym.make(env)  # made once; Minari reads its spec from it
        env_spaces = (probe.observation_space, probe.action_space)
    obs_space = observation_space or saved.get("observation_space") or (env_spaces[0] if env_spaces else None)
    act_space = action_space or saved.get("action_space") or (env_spaces[1] if env_spaces else None)
    if obs_space is None or act_space is None:
        inferred_obs, inferred_act = _infer_spaces(store)
        obs_space = obs_space or inferred_obs
        act_space = act_space or inferred_act

    total = sum(int(store.unit_length[p.slot]) - p.skip for run in runs for p in run)
    if description is None:
        origin = f" converted from Minari dataset {provenance['dataset_id']}" if provenance.get("dataset_id") else ""
        description = f"Exported from a hippogym memory{origin}: {len(runs)} episodes, {total} steps."
    bar = tqdm(total=total, unit="step", desc=f"export {dataset_id}", disable=None if progress else True, leave=False)
    try:
        dataset = minari.create_dataset_from_buffers(
            dataset_id,
            _episode_buffers(store, runs, obs_space, act_space, include_infos, data_format == "hdf5", bar),
            env=env,
            algorithm_name=algorithm_name,
            author=author,
            description=description,
            data_format=data_format,
            observation_space=obs_space,
            action_space=act_space,
            jpeg_encoding=jpeg_encoding,
            **dataset_kwargs,
        )
    except BaseException:
        if target.exists():
            try:
                minari.delete_dataset(dataset_id)
            except Exception:  # noqa: BLE001 - best effort; the original error matters
                logger.warning("Could not remove the partially written dataset at %s", target)
        raise
    finally:
        bar.close()
        if made_env is not None:
            made_env.close()
    logger.info("exported %d episodes (%d steps) to Minari dataset %r", len(runs), total, dataset_id)
    return dataset
