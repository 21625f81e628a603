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

The checks that normalise these forms live in :mod:`hippogym.episode_checks` (one layer below).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hippogym.episode_checks import check_episode_fields, trusted_episode_fields
from hippogym.errors import ValidationError, describe
from hippogym.observations import (
    as_bootstrap_value,
    map_observation,
    map_observation_pair,
    observation_to_numpy,
    one_of,
    target_tensor,
)
from hippogym.returns import discounted_returns
from hippogym.types import Observation  # defined there (below the layer-3 packages); re-exported here

__all__ = ["Episode", "Observation"]

_DICT_FORMAT = "hippogym.episode/1"
_FIELD_ORDER = (
    "states",
    "next_states",
    "actions",
    "rewards",
    "terminated",
    "truncated",
    "infos",
    "episode_id",
    "start_step",
    "success",
    "metadata",
    "returns",
    "advantages",
)


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
        infos: Optional per-step info: a dict of arrays ``[T, ...]`` (e.g. selected ``info`` keys),
            or a list of ``T`` per-step dicts (the seed's form), stacked into such a dict. In the
            list form every value must be numeric; a key missing from some steps is ``0`` there.
        episode_id: Optional id of the environment episode this run belongs to. Segments of the
            same environment episode share it.
        start_step: Index of the first step of this run within its environment episode.
        success: Whether the environment episode succeeded, if known (``info["is_success"]``).
        metadata: Free-form JSON-able metadata.
        dones: Shorthand for ``terminated`` (``truncated`` is then all ``False``). Cannot be given
            together with ``terminated`` or ``truncated``.
        states: Alias of ``observations`` (the seed's name), keyword only.
        next_states: Alias of ``next_observations``, keyword only.
        returns: Optional per-step targets ``[T]`` (e.g. from :meth:`compute_returns`), keyword only.
        advantages: Optional per-step advantages ``[T]`` (e.g. from :meth:`compute_gae`), keyword only.

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
    returns: Tensor | None = None
    advantages: Tensor | None = None

    def __init__(
        self,
        observations: Any = None,
        actions: Any = None,
        rewards: Any = None,
        terminated: Any = None,
        truncated: Any = None,
        next_observations: Any = None,
        infos: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        episode_id: int | None = None,
        start_step: int = 0,
        success: bool | None = None,
        metadata: dict[str, Any] | None = None,
        dones: Any = None,
        *,
        states: Any = None,
        next_states: Any = None,
        returns: Any = None,
        advantages: Any = None,
    ) -> None:
        obs, obs_name = one_of("observations", observations, "states", states)
        next_obs, next_name = one_of("next_observations", next_observations, "next_states", next_states)
        if obs is None:
            raise ValidationError(
                "observations",
                "an array of shape [T + 1, ...] or [T, ...] (or a dict of them)",
                "nothing",
                "Pass `observations=` (or its alias `states=`).",
            )
        for name, value in (("actions", actions), ("rewards", rewards)):
            if value is None:
                raise ValidationError(name, "an array with one row per step", "nothing")
        fields = check_episode_fields(
            states=obs,
            next_states=next_obs,
            actions=actions,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            dones=dones,
            infos=infos,
            episode_id=episode_id,
            start_step=start_step,
            success=success,
            returns=returns,
            advantages=advantages,
            obs_name=obs_name,
            next_name=next_name,
        )
        final_known = fields.pop("final_next_state_known")
        fields["metadata"] = {} if metadata is None else metadata
        for name in _FIELD_ORDER:  # the attribute order of the instance dict, as from_validated makes it
            object.__setattr__(self, name, fields[name])
        object.__setattr__(self, "_final_next_state_known", final_known)

    @classmethod
    def from_validated(
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

        Fast path for producers: skips the structural checks of ``__init__`` (types, row counts,
        shapes, dtype kinds, flag placement), which the caller guarantees, but still rejects
        NaN/inf exactly like ``__init__`` (one ``np.isfinite(x).all()`` per float array). The
        arrays are taken over, not copied (``rewards`` is converted to a new float32 array): the
        caller must pass fresh arrays it no longer uses.

        Guarantees the caller gives: every array is a numeric numpy array with ``T >= 1`` rows
        (``states``/``next_states`` the same shape and dtype, a dict of them with the same keys
        for Dict observations, keys valid as in ``__init__``); ``rewards`` has shape ``[T]``;
        ``terminated``/``truncated`` describe the last step only; ``start_step >= 0``.
        """
        fields = trusted_episode_fields(
            states, next_states, actions, rewards, terminated, truncated, infos, episode_id, start_step, success
        )
        ep = object.__new__(cls)
        ep.__dict__.update(fields)
        ep.__dict__["_final_next_state_known"] = True
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
        return map_observation_pair(self.states, self.next_states, lambda s, ns: torch.cat([s, ns[-1:]], dim=0))

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

    # ------------------------------------------------------------------ derived episodes
    def slice(self, start: int, stop: int) -> Episode:
        """Steps ``start .. stop - 1`` as an episode (tensors are views, not copies).

        Negative indices count from the end, as in Python slicing. The slice keeps ``episode_id``;
        its ``start_step`` is shifted by ``start``. A slice that stops before the last step ends
        with neither ``terminated`` nor ``truncated`` and ``success=None`` (its next observation
        is real: bootstrapping continues); one that reaches the end keeps them.

        Args:
            start: First step (inclusive).
            stop: Last step (exclusive).

        Returns:
            A new :class:`Episode` of ``stop - start`` steps.

        Raises:
            ValidationError: The range holds no step.

        Example:
            >>> ep = Episode(observations=torch.arange(6.0)[:, None], actions=torch.zeros(5), rewards=torch.ones(5))
            >>> part = ep.slice(1, 3)
            >>> len(part), part.start_step, part.states[:, 0].tolist(), part.next_states[-1, 0].item()
            (2, 1, [1.0, 2.0], 3.0)
        """
        length = len(self)
        for name, value in (("start", start), ("stop", stop)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValidationError(name, "an int", describe(value))
        lo, hi, _ = slice(int(start), int(stop)).indices(length)
        if hi <= lo:
            expected = f"a non-empty range of steps within [0, {length})"
            raise ValidationError("start/stop", expected, f"[{start}, {stop})")
        whole = hi == length
        no_flags = torch.zeros(hi - lo, dtype=torch.bool)

        def cut(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[lo:hi]

        ep = object.__new__(Episode)
        ep.__dict__.update(
            states=map_observation(self.states, lambda t: t[lo:hi]),
            next_states=map_observation(self.next_states, lambda t: t[lo:hi]),
            actions=self.actions[lo:hi],
            rewards=self.rewards[lo:hi],
            terminated=self.terminated[lo:hi] if whole else no_flags,
            truncated=self.truncated[lo:hi] if whole else no_flags.clone(),
            infos={k: v[lo:hi] for k, v in self.infos.items()} if self.infos else None,
            episode_id=self.episode_id,
            start_step=self.start_step + lo,
            success=self.success if whole else None,
            metadata=dict(self.metadata),
            returns=cut(self.returns),
            advantages=cut(self.advantages),
            _final_next_state_known=self.final_next_state_known if whole else True,
        )
        return ep

    def compute_returns(self, gamma: float, *, bootstrap_value: float | None = None) -> Tensor:
        """Discounted return-to-go of every step: ``G_t = r_t + gamma * G_{t+1}``.

        Args:
            gamma: Discount in ``[0, 1]``.
            bootstrap_value: Value ``V(s_T)`` of the observation after the last step, added as
                ``gamma^(T - t) * V`` unless the episode ``terminated`` (then the tail is 0). Leave it
                ``None`` for the Monte-Carlo return of the observed rewards.

        Returns:
            ``[T]`` float32 returns. The episode is not changed (it is frozen): keep them with
            :meth:`with_targets` (``ep.with_targets(returns=ep.compute_returns(0.99))``).

        Raises:
            ValidationError: ``gamma`` is outside ``[0, 1]`` or ``bootstrap_value`` is not finite.

        Example:
            >>> rewards = torch.tensor([0.0, 0.0, 1.0])
            >>> ep = Episode(observations=torch.zeros(4, 1), actions=torch.zeros(3), rewards=rewards)
            >>> ep.compute_returns(0.5).tolist()
            [0.25, 0.5, 1.0]
        """
        values = None
        if bootstrap_value is not None and not bool(self.terminated[-1]):
            values = as_bootstrap_value(bootstrap_value)
        length = len(self)
        out = discounted_returns(self.rewards.numpy(), [0], [length], gamma, values)
        return torch.from_numpy(out.astype(np.float32))

    def compute_gae(
        self,
        values: Any,
        gamma: float,
        gae_lambda: float = 0.95,
        *,
        bootstrap_value: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Generalised advantage estimation (GAE) from per-step state values.

        ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` with ``V(s_T) = bootstrap_value`` (0 when the
        episode ``terminated``), ``A_t = sum_k (gamma * lambda)^k delta_{t+k}`` and ``R_t = A_t + V(s_t)``.

        Args:
            values: ``[T]`` values ``V(s_t)`` of ``states`` (array-like; or a callable mapping
                ``states`` to them, like the seed's ``value_fn``).
            gamma: Discount in ``[0, 1]``.
            gae_lambda: GAE ``lambda`` in ``[0, 1]``.
            bootstrap_value: ``V`` of the observation after the last step (ignored if terminated).

        Returns:
            ``(advantages, returns)``, each ``[T]`` float32.

        Raises:
            ValidationError: ``values`` is not ``[T]`` finite numbers, or a parameter is out of range.
        """
        if callable(values):
            with torch.no_grad():
                values = values(self.states)
        v64 = target_tensor(values, "values", len(self)).numpy().astype(np.float64)  # type: ignore[union-attr]
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= gamma <= 1.0:
            raise ValidationError("gamma", "a float in [0, 1]", describe(gamma))
        tail = 0.0 if bool(self.terminated[-1]) else float(as_bootstrap_value(bootstrap_value)[0])
        next_v = np.append(v64[1:], tail)
        deltas = self.rewards.numpy().astype(np.float64) + float(gamma) * next_v - v64
        if isinstance(gae_lambda, bool) or not isinstance(gae_lambda, (int, float)) or not 0.0 <= gae_lambda <= 1.0:
            raise ValidationError("gae_lambda", "a float in [0, 1]", describe(gae_lambda))
        adv = discounted_returns(deltas, [0], [len(self)], float(gamma) * float(gae_lambda))
        return torch.from_numpy(adv.astype(np.float32)), torch.from_numpy((adv + v64).astype(np.float32))

    def with_targets(self, returns: Any = None, advantages: Any = None) -> Episode:
        """A copy of this episode carrying ``returns`` and/or ``advantages`` (``None`` keeps the current).

        Args:
            returns: ``[T]`` per-step returns, or ``None``.
            advantages: ``[T]`` per-step advantages, or ``None``.

        Returns:
            A new :class:`Episode` sharing this one's tensors.

        Raises:
            ValidationError: A target is not ``[T]`` finite numbers.
        """
        length = len(self)
        ep = object.__new__(Episode)
        ep.__dict__.update(self.__dict__)
        ep.__dict__["metadata"] = dict(self.metadata)
        if returns is not None:
            ep.__dict__["returns"] = target_tensor(returns, "returns", length)
        if advantages is not None:
            ep.__dict__["advantages"] = target_tensor(advantages, "advantages", length)
        return ep

    # ------------------------------------------------------------------ plain-data form
    def to_dict(self) -> dict[str, Any]:
        """The episode as plain data: numpy arrays, Python scalars, lists and dicts (no pickle).

        Keys: ``format`` (``"hippogym.episode/1"``), ``states``, ``next_states`` (arrays, or dicts
        of arrays for Dict observations), ``actions``, ``rewards``, ``terminated``, ``truncated``
        (arrays), ``infos`` (a dict of arrays or ``None``), ``returns``, ``advantages`` (arrays or
        ``None``), ``episode_id``, ``start_step``, ``success``, ``final_next_state_known``,
        ``metadata``. Arrays are copies. :meth:`from_dict` restores it exactly; it also accepts
        the arrays as nested lists (e.g. after JSON, where dtypes become the JSON defaults).

        Example:
            >>> ep = Episode(observations=torch.zeros(3, 2), actions=torch.zeros(2), rewards=torch.ones(2))
            >>> d = ep.to_dict()
            >>> d["rewards"].tolist(), Episode.from_dict(d).episode_return
            ([1.0, 1.0], 2.0)
        """

        def arr(t: Tensor | None) -> np.ndarray | None:
            return None if t is None else t.numpy().copy()

        return {
            "format": _DICT_FORMAT,
            "states": observation_to_numpy(self.states),
            "next_states": observation_to_numpy(self.next_states),
            "actions": arr(self.actions),
            "rewards": arr(self.rewards),
            "terminated": arr(self.terminated),
            "truncated": arr(self.truncated),
            "infos": {k: v.numpy().copy() for k, v in self.infos.items()} if self.infos else None,
            "returns": arr(self.returns),
            "advantages": arr(self.advantages),
            "episode_id": self.episode_id,
            "start_step": self.start_step,
            "success": self.success,
            "final_next_state_known": self.final_next_state_known,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        """Rebuild an episode from :meth:`to_dict`'s output (validated like the constructor).

        Also reads the seed's ``Episode.to_dict()`` payloads (``states``, ``actions``, ``rewards``,
        ``dones``, ``infos`` as a list of dicts, ``returns``, ``advantages``, ``next_states``; arrays
        or tensors), mapping ``dones`` to ``terminated``.

        Args:
            data: The mapping.

        Returns:
            The :class:`Episode`.

        Raises:
            ValidationError: ``data`` is not a mapping, has an unknown ``format``, or a field is invalid.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("data", "a mapping from Episode.to_dict()", describe(data))
        fmt = data.get("format")
        if fmt is not None and fmt != _DICT_FORMAT:
            raise ValidationError("format", repr(_DICT_FORMAT), repr(fmt), "Was it written by a newer hippogym?")
        known = data.get("final_next_state_known", True)
        ep = cls(
            states=data["states"],
            next_states=data.get("next_states"),
            actions=data["actions"],
            rewards=data["rewards"],
            terminated=data.get("terminated"),
            truncated=data.get("truncated"),
            dones=data.get("dones"),
            infos=data.get("infos"),
            returns=data.get("returns"),
            advantages=data.get("advantages"),
            episode_id=data.get("episode_id"),
            start_step=data.get("start_step", 0),
            success=data.get("success"),
            metadata=dict(data.get("metadata") or {}),
        )
        if not known:
            object.__setattr__(ep, "_final_next_state_known", False)
        return ep

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
