"""The unit of experience that enters the memory: :class:`Episode`.

An ``Episode`` is one contiguous run of transitions from a single environment episode: a whole
episode, or a segment of one cut by a segmenter. It always carries the observation that follows its
last step, so the final transition keeps its bootstrap target.

Names: the concept is called *observations* everywhere (``Episode(observations=...)``, a batch's
``observations`` / ``next_observations``, Minari's ``observations``). The seed's names stay accepted:
``states=`` is an alias of ``observations=`` and ``next_states=`` of ``next_observations=`` (give one
of each pair, not both). On a built episode, :attr:`Episode.observations` is the ``T + 1`` view and
``states`` / ``next_states`` are the per-step views (``T`` rows each: the observation before and
after each step), which is what the memory stores.

Three ways to give observations, all normalised to the same per-step form:

* **T+1 observations** (Minari's convention): ``observations`` has ``T + 1`` rows for ``T`` actions;
  the last row is the observation after the final step.
* **Explicit next observations**: ``observations`` and ``next_observations`` both have ``T`` rows.
* **T observations** (the short form): ``observations`` has ``T`` rows and no
  ``next_observations``. The observation after the final step is unknown, so it is taken to be the
  final observation itself (a self-loop) and ``final_next_state_known`` is ``False``. Prefer one of
  the other forms whenever a TD target will bootstrap from that last transition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import ValidationError, describe
from hippogym.types import Observation  # defined there (below the layer-3 packages); re-exported here

__all__ = ["Episode", "Observation"]

_NUMERIC_KINDS = ("b", "i", "u", "f")


def _as_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise ValidationError(name, "a numeric array", describe(value))
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (list, tuple, int, float, bool, np.number, np.bool_)):
        try:
            return torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise ValidationError(name, "a numeric array", describe(value)) from exc
    raise ValidationError(name, "a torch.Tensor or numpy array", describe(value))


def _check_finite(tensor: Tensor, name: str) -> None:
    if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()[0].tolist()
        raise ValidationError(
            name,
            "finite (no NaN or inf)",
            f"a non-finite value at index {tuple(bad)}",
            "Check the environment or the preprocessing that produced it.",
        )


def _finite_np(arr: np.ndarray, name: str) -> np.ndarray:
    """``_check_finite`` for a numpy array (the same error); returns ``arr``."""
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        _check_finite(torch.from_numpy(arr), name)
    return arr


def _as_observation(value: Any, name: str) -> Observation:
    if isinstance(value, Mapping):
        if not value:
            raise ValidationError(name, "a non-empty dict of arrays", "an empty dict")
        out = {}
        for key in sorted(value):
            if not isinstance(key, str) or not key or "/" in key:
                raise ValidationError(f"{name} keys", "non-empty strings without '/'", repr(key))
            out[key] = _as_tensor(value[key], f"{name}[{key!r}]")
        return out
    return _as_tensor(value, name)


def _leading(obs: Observation) -> int:
    if isinstance(obs, dict):
        return next(iter(obs.values())).shape[0] if next(iter(obs.values())).dim() else 0
    return obs.shape[0] if obs.dim() else 0


def _map(obs: Observation, fn) -> Observation:
    if isinstance(obs, dict):
        return {k: fn(v) for k, v in obs.items()}
    return fn(obs)


def _items(obs: Observation, name: str):
    if isinstance(obs, dict):
        return [(f"{name}[{k!r}]", v) for k, v in obs.items()]
    return [(name, obs)]


def _one_of(name: str, value: Any, alias: str, alias_value: Any) -> tuple[Any, str]:
    """Resolve a keyword and its alias: the value given and the name it was given under."""
    if value is not None and alias_value is not None:
        raise ValidationError(
            alias, f"absent when `{name}` is given", describe(alias_value),
            f"`{alias}` is an alias of `{name}`; pass one or the other.",
        )
    return (alias_value, alias) if value is None else (value, name)


def _flag(value: Any, name: str, length: int) -> Tensor:
    tensor = _as_tensor(value, name)
    if tensor.dim() == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tuple(tensor.shape) != (length,):
        raise ValidationError(name, f"shape ({length},) (one flag per step)", describe(tensor))
    if tensor.dtype != torch.bool:
        if tensor.is_floating_point() and not bool(((tensor == 0) | (tensor == 1)).all()):
            raise ValidationError(name, "boolean flags (0/1)", describe(tensor))
        tensor = tensor != 0
    return tensor


@dataclass(frozen=True, eq=False, repr=False, init=False)
class Episode:
    """A contiguous run of transitions from one environment episode.

    Args:
        observations: Observations, ``[T + 1, ...]`` or ``[T, ...]`` (see the module docstring), or
            a dict of such arrays for Dict observation spaces (images stay in their own dtype, e.g.
            ``uint8``). Floating-point observations must be finite. ``states=`` is an alias.
        actions: Actions ``[T, ...]``; continuous (float) or discrete (integer).
        rewards: Rewards ``[T]`` (``[T, 1]`` is accepted); must be finite.
        terminated: ``[T]`` booleans: the MDP reached a terminal state (no bootstrap).
        truncated: ``[T]`` booleans: the episode was cut (time limit); the next state is still
            bootstrapped. Only the last step may be terminated or truncated.
        next_observations: Optional explicit next observations ``[T, ...]``; ``next_states=`` is an
            alias.
        infos: Optional dict of per-step arrays ``[T, ...]`` (e.g. selected ``info`` keys).
        episode_id: Optional id of the environment episode this run belongs to. Segments of the
            same environment episode share it.
        start_step: Index of the first step of this run within its environment episode.
        success: Whether the environment episode succeeded, if known (``info["is_success"]``).
        metadata: Free-form JSON-able metadata.
        dones: Shorthand for ``terminated`` (``truncated`` is then all ``False``). Cannot be given
            together with ``terminated`` or ``truncated``.
        states: Alias of ``observations`` (the seed's name), keyword only.
        next_states: Alias of ``next_observations``, keyword only.

    Attributes:
        states: The observation before each step, ``[T, ...]`` (``observations[:-1]``).
        next_states: The observation after each step, ``[T, ...]`` (``observations[1:]``).

    Raises:
        ValidationError: A field has the wrong type, shape or dtype, or holds NaN/inf. The message
            names the field, what was expected and what arrived.

    Example:
        >>> import torch
        >>> ep = Episode(observations=torch.zeros(4, 3), actions=torch.zeros(3, 1), rewards=torch.ones(3))
        >>> len(ep), ep.states.shape, ep.next_states.shape, ep.observations.shape
        (3, torch.Size([3, 3]), torch.Size([3, 3]), torch.Size([4, 3]))
    """

    states: Observation
    actions: Tensor
    rewards: Tensor
    terminated: Tensor | None = None
    truncated: Tensor | None = None
    next_states: Observation | None = None
    infos: dict[str, Tensor] | None = None
    episode_id: int | None = None
    start_step: int = 0
    success: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        observations: Any = None,
        actions: Any = None,
        rewards: Any = None,
        terminated: Any = None,
        truncated: Any = None,
        next_observations: Any = None,
        infos: Mapping[str, Any] | None = None,
        episode_id: int | None = None,
        start_step: int = 0,
        success: bool | None = None,
        metadata: dict[str, Any] | None = None,
        dones: Any = None,
        *,
        states: Any = None,
        next_states: Any = None,
    ) -> None:
        obs, obs_name = _one_of("observations", observations, "states", states)
        next_obs, next_name = _one_of("next_observations", next_observations, "next_states", next_states)
        if obs is None:
            raise ValidationError(
                "observations", "an array of shape [T + 1, ...] or [T, ...] (or a dict of them)", "nothing",
                "Pass `observations=` (or its alias `states=`).",
            )
        for name, value in (("actions", actions), ("rewards", rewards)):
            if value is None:
                raise ValidationError(name, "an array with one row per step", "nothing")
        setattr_ = object.__setattr__
        setattr_(self, "states", obs)
        setattr_(self, "next_states", next_obs)
        setattr_(self, "actions", actions)
        setattr_(self, "rewards", rewards)
        setattr_(self, "terminated", terminated)
        setattr_(self, "truncated", truncated)
        setattr_(self, "infos", infos)
        setattr_(self, "episode_id", episode_id)
        setattr_(self, "start_step", start_step)
        setattr_(self, "success", success)
        setattr_(self, "metadata", {} if metadata is None else metadata)
        self._validate(dones, obs_name, next_name)

    def _validate(self, dones: Any, obs_name: str, next_name: str) -> None:
        """Check and normalise every field in place (``obs_name``/``next_name``: the keywords used)."""
        setattr_ = object.__setattr__
        actions = _as_tensor(self.actions, "actions")
        if actions.dim() == 0 or actions.shape[0] == 0:
            raise ValidationError("actions", "an array of shape [T, ...] with T >= 1", describe(actions))
        if actions.dtype == torch.bool:
            actions = actions.to(torch.int64)
        _check_finite(actions, "actions")
        length = actions.shape[0]

        rewards = _as_tensor(self.rewards, "rewards")
        if rewards.dim() == 2 and rewards.shape[1] == 1:
            rewards = rewards[:, 0]
        if tuple(rewards.shape) != (length,):
            raise ValidationError("rewards", f"shape ({length},) (one reward per action)", describe(rewards))
        rewards = rewards.to(torch.float32)
        _check_finite(rewards, "rewards")

        states = _as_observation(self.states, obs_name)
        next_states = None if self.next_states is None else _as_observation(self.next_states, next_name)
        for name, tensor in _items(states, obs_name):
            if tensor.dim() == 0:
                raise ValidationError(name, "an array with a leading time axis", describe(tensor))
        lead = {t.shape[0] for _, t in _items(states, obs_name)}
        if len(lead) != 1:
            raise ValidationError(obs_name, "the same number of rows for every key", f"row counts {sorted(lead)}")
        n_states = lead.pop()
        final_known = True
        if n_states == length + 1:
            if next_states is not None:
                raise ValidationError(
                    next_name, f"None when `{obs_name}` has T + 1 rows", describe(next_states),
                    f"Give either T + 1 observations or T observations plus `{next_name}`.",
                )
            next_states = _map(states, lambda t: t[1:])
            states = _map(states, lambda t: t[:length])
        elif n_states == length:
            if next_states is None:
                final_known = False
                next_states = _map(states, lambda t: torch.cat([t[1:], t[-1:]], dim=0))
        else:
            raise ValidationError(
                obs_name, f"{length} or {length + 1} rows (T or T + 1 for T={length} actions)", f"{n_states} rows"
            )
        if isinstance(states, dict) != isinstance(next_states, dict) or (
            isinstance(states, dict) and states.keys() != next_states.keys()
        ):
            raise ValidationError(next_name, f"the same structure (keys) as `{obs_name}`", describe(next_states))
        for (name, s), (next_item, ns) in zip(_items(states, obs_name), _items(next_states, next_name)):
            if ns.shape != s.shape or ns.dtype != s.dtype:
                raise ValidationError(next_item, f"shape {tuple(s.shape)} and dtype {s.dtype}", describe(ns))
            _check_finite(s, name)
            _check_finite(ns, next_item)

        if dones is not None and (self.terminated is not None or self.truncated is not None):
            raise ValidationError(
                "dones", "absent when `terminated` or `truncated` is given", describe(dones),
                "`dones` is a shorthand for `terminated`; pass one or the other.",
            )
        terminated = self.terminated if dones is None else dones
        no_flags = torch.zeros(length, dtype=torch.bool)
        terminated = no_flags if terminated is None else _flag(terminated, "terminated", length)
        truncated = no_flags.clone() if self.truncated is None else _flag(self.truncated, "truncated", length)
        for name, flags in (("terminated", terminated), ("truncated", truncated)):
            if length > 1 and bool(flags[:-1].any()):
                step = int(flags[:-1].nonzero()[0])
                raise ValidationError(
                    name, "True only at the last step (one Episode is one contiguous run)",
                    f"True at step {step} of {length}",
                    "Split the stream into episodes first, e.g. with hippogym.segmentation.TerminalSegmenter.",
                )

        infos = None
        if self.infos:
            infos = {}
            for key, value in self.infos.items():
                tensor = _as_tensor(value, f"infos[{key!r}]")
                if tensor.dim() == 0 or tensor.shape[0] != length:
                    raise ValidationError(f"infos[{key!r}]", f"an array with {length} rows", describe(tensor))
                infos[str(key)] = tensor
        if self.episode_id is not None and not isinstance(self.episode_id, (int, np.integer)):
            raise ValidationError("episode_id", "an int or None", describe(self.episode_id))
        if not isinstance(self.start_step, (int, np.integer)) or self.start_step < 0:
            raise ValidationError("start_step", "an int >= 0", describe(self.start_step))

        setattr_(self, "states", states)
        setattr_(self, "next_states", next_states)
        setattr_(self, "actions", actions)
        setattr_(self, "rewards", rewards)
        setattr_(self, "terminated", terminated)
        setattr_(self, "truncated", truncated)
        setattr_(self, "infos", infos)
        setattr_(self, "episode_id", None if self.episode_id is None else int(self.episode_id))
        setattr_(self, "start_step", int(self.start_step))
        setattr_(self, "success", None if self.success is None else bool(self.success))
        setattr_(self, "_final_next_state_known", final_known)

    @classmethod
    def _trusted(
        cls,
        states: np.ndarray | dict[str, np.ndarray],
        next_states: np.ndarray | dict[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: bool,
        truncated: bool,
        infos: dict[str, np.ndarray] | None,
        episode_id: int | None,
        start_step: int,
        success: bool | None,
    ) -> Episode:
        """Build an episode from numpy arrays a producer (a segmenter) has already validated.

        Private fast path: skips the structural checks of ``__init__`` (types, row counts,
        shapes, dtype kinds, flag placement), which the caller guarantees, but still rejects
        NaN/inf exactly like ``__init__`` (one ``np.isfinite(x).all()`` per float array). The
        arrays are taken over, not copied (``rewards`` is converted to a new float32 array): the
        caller must pass fresh arrays it no longer uses.

        Guarantees the caller gives: every array is a numeric numpy array with ``T >= 1`` rows
        (``states``/``next_states`` the same shape and dtype, a dict of them with the same keys
        for Dict observations, keys valid as in ``__init__``); ``rewards`` has shape ``[T]``;
        ``terminated``/``truncated`` describe the last step only; ``start_step >= 0``.
        """
        actions = np.ascontiguousarray(actions)
        if actions.dtype == np.bool_:
            actions = actions.astype(np.int64)
        length = actions.shape[0]
        with np.errstate(over="ignore"):  # a reward beyond float32 becomes inf and is rejected below
            rewards = np.array(rewards, dtype=np.float32)
        _finite_np(actions, "actions")
        _finite_np(rewards, "rewards")
        if isinstance(states, dict):
            st = {k: _finite_np(np.ascontiguousarray(states[k]), f"states[{k!r}]") for k in sorted(states)}
            nst = {k: _finite_np(np.ascontiguousarray(next_states[k]), f"next_states[{k!r}]") for k in st}  # type: ignore[index]
            st_t: Observation = {k: torch.from_numpy(v) for k, v in st.items()}
            nst_t: Observation = {k: torch.from_numpy(v) for k, v in nst.items()}
        else:
            st_t = torch.from_numpy(_finite_np(np.ascontiguousarray(states), "states"))
            nst_t = torch.from_numpy(_finite_np(np.ascontiguousarray(next_states), "next_states"))  # type: ignore[arg-type]
        term = np.zeros(length, dtype=np.bool_)
        trunc = np.zeros(length, dtype=np.bool_)
        term[-1] = terminated
        trunc[-1] = truncated
        ep = object.__new__(cls)
        ep.__dict__.update(
            states=st_t,
            next_states=nst_t,
            actions=torch.from_numpy(actions),
            rewards=torch.from_numpy(rewards),
            terminated=torch.from_numpy(term),
            truncated=torch.from_numpy(trunc),
            infos={str(k): torch.from_numpy(np.ascontiguousarray(v)) for k, v in infos.items()} if infos else None,
            episode_id=None if episode_id is None else int(episode_id),
            start_step=int(start_step),
            success=None if success is None else bool(success),
            metadata={},
            _final_next_state_known=True,
        )
        return ep

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def length(self) -> int:
        """Number of transitions ``T``."""
        return len(self)

    @property
    def observations(self) -> Observation:
        """The ``T + 1`` observations: ``states`` followed by the last ``next_states`` row.

        With the T-observation short form the last row repeats the final observation (see
        :attr:`final_next_state_known`).
        """
        return _map_pair(self.states, self.next_states, lambda s, ns: torch.cat([s, ns[-1:]], dim=0))

    @property
    def final_next_state_known(self) -> bool:
        """``False`` when built from the T-observation short form (the last next state is a copy)."""
        return bool(getattr(self, "_final_next_state_known", True))

    @property
    def episode_return(self) -> float:
        """Sum of the rewards."""
        return float(self.rewards.sum())

    @property
    def is_dict(self) -> bool:
        """Whether observations are a dict (Dict observation space)."""
        return isinstance(self.states, dict)

    @property
    def outcome(self) -> int:
        """``1`` success, ``0`` failure, ``-1`` unknown (the ``success`` flag as an int)."""
        return -1 if self.success is None else int(self.success)

    def __repr__(self) -> str:
        def shape(obs: Observation) -> str:
            if isinstance(obs, dict):
                return "{" + ", ".join(f"{k}: {tuple(v.shape[1:])} {str(v.dtype)[6:]}" for k, v in obs.items()) + "}"
            return f"{tuple(obs.shape[1:])} {str(obs.dtype)[6:]}"

        ret = self.episode_return
        ret_text = f"{ret:.3g}" if math.isfinite(ret) else str(ret)
        return (
            f"Episode(T={len(self)}, observations={shape(self.states)}, actions={tuple(self.actions.shape[1:])} "
            f"{str(self.actions.dtype)[6:]}, return={ret_text}, terminated={bool(self.terminated[-1])}, "
            f"truncated={bool(self.truncated[-1])}, episode_id={self.episode_id}, start_step={self.start_step})"
        )


def _map_pair(a: Observation, b: Observation, fn) -> Observation:
    if isinstance(a, dict):
        return {k: fn(a[k], b[k]) for k in a}
    return fn(a, b)
