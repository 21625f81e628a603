"""Checks and normalisation of the fields of an :class:`~hippogym.Episode`.

:func:`check_episode_fields` is what ``Episode(...)`` runs: it turns every accepted input form
(T + 1 or T observations, explicit next observations, ``dones``, per-step info dicts) into the
tensors an episode holds, or raises a :class:`~hippogym.errors.ValidationError` naming the field.
:func:`trusted_episode_fields` is the fast path of ``Episode.from_validated`` for producers (the
segmenters) whose arrays are already checked.

This module sits in the base layer, below :mod:`hippogym.episode`: it never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hippogym.errors import ValidationError, describe
from hippogym.observations import (
    as_observation,
    as_tensor,
    check_finite,
    finite_np,
    flag_tensor,
    map_observation,
    observation_items,
    stack_info_rows,
    target_tensor,
)
from hippogym.types import Observation

__all__ = ["check_episode_fields", "trusted_episode_fields"]


def check_episode_fields(
    *,
    states: Any,
    next_states: Any,
    actions: Any,
    rewards: Any,
    terminated: Any,
    truncated: Any,
    dones: Any,
    infos: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    episode_id: Any,
    start_step: Any,
    success: Any,
    returns: Any,
    advantages: Any,
    obs_name: str = "observations",
    next_name: str = "next_observations",
) -> dict[str, Any]:
    """Check and normalise the fields of an episode, as :class:`~hippogym.Episode` takes them.

    The arguments are the constructor's (``states``/``next_states`` given under either name; the
    error messages use ``obs_name``/``next_name``, the keywords the caller used). See
    :class:`~hippogym.Episode` for the accepted forms and the module docstring of
    :mod:`hippogym.episode` for the three ways to give observations.

    Args:
    states: Observations, ``[T + 1, ...]`` or ``[T, ...]`` (or a dict of such arrays).
    next_states: Explicit next observations ``[T, ...]``, or ``None``.
    actions: Actions ``[T, ...]``.
    rewards: Rewards ``[T]`` (or ``[T, 1]``).
    terminated: ``[T]`` terminal flags, or ``None``.
    truncated: ``[T]`` truncation flags, or ``None``.
    dones: Shorthand for ``terminated``, or ``None``.
    infos: A dict of ``[T, ...]`` arrays, a list of ``T`` per-step dicts, or ``None``.
    episode_id: An int or ``None``.
    start_step: An int ``>= 0``.
    success: The outcome, or ``None``.
    returns: ``[T]`` per-step returns, or ``None``.
    advantages: ``[T]`` per-step advantages, or ``None``.
    obs_name: Name of the observation keyword in error messages.
    next_name: Name of the next-observation keyword in error messages.

    Returns:
    The normalised fields by attribute name (``states``, ``next_states``, ``actions``,
    ``rewards``, ``terminated``, ``truncated``, ``infos``, ``returns``, ``advantages``,
    ``episode_id``, ``start_step``, ``success``) plus ``final_next_state_known``.

    Raises:
    ValidationError: A field has the wrong type, shape or dtype, or holds NaN/inf.

    Example:
    >>> import torch
    >>> fields = check_episode_fields(
    ...     states=torch.zeros(3, 2), next_states=None, actions=torch.zeros(2), rewards=[1, 1],
    ...     terminated=None, truncated=None, dones=None, infos=None, episode_id=None,
    ...     start_step=0, success=None, returns=None, advantages=None,
    ... )
    >>> fields["states"].shape, fields["rewards"].dtype, fields["final_next_state_known"]
    (torch.Size([2, 2]), torch.float32, True)
    """
    actions = as_tensor(actions, "actions")
    if actions.dim() == 0 or actions.shape[0] == 0:
        raise ValidationError("actions", "an array of shape [T, ...] with T >= 1", describe(actions))
    if actions.dtype == torch.bool:
        actions = actions.to(torch.int64)
    check_finite(actions, "actions")
    length = actions.shape[0]

    rewards = as_tensor(rewards, "rewards")
    if rewards.dim() == 2 and rewards.shape[1] == 1:
        rewards = rewards[:, 0]
    if tuple(rewards.shape) != (length,):
        raise ValidationError("rewards", f"shape ({length},) (one reward per action)", describe(rewards))
    rewards = rewards.to(torch.float32)
    check_finite(rewards, "rewards")

    states = as_observation(states, obs_name)
    next_states = None if next_states is None else as_observation(next_states, next_name)
    for name, tensor in observation_items(states, obs_name):
        if tensor.dim() == 0:
            raise ValidationError(name, "an array with a leading time axis", describe(tensor))
    lead = {t.shape[0] for _, t in observation_items(states, obs_name)}
    if len(lead) != 1:
        raise ValidationError(obs_name, "the same number of rows for every key", f"row counts {sorted(lead)}")
    n_states = lead.pop()
    final_known = True
    if n_states == length + 1:
        if next_states is not None:
            raise ValidationError(
                next_name,
                f"None when `{obs_name}` has T + 1 rows",
                describe(next_states),
                f"Give either T + 1 observations or T observations plus `{next_name}`.",
            )
        next_states = map_observation(states, lambda t: t[1:])
        states = map_observation(states, lambda t: t[:length])
    elif n_states == length:
        if next_states is None:
            final_known = False
            next_states = map_observation(states, lambda t: torch.cat([t[1:], t[-1:]], dim=0))
    else:
        raise ValidationError(
            obs_name, f"{length} or {length + 1} rows (T or T + 1 for T={length} actions)", f"{n_states} rows"
        )
    if isinstance(states, dict) != isinstance(next_states, dict) or (
        isinstance(states, dict) and states.keys() != next_states.keys()
    ):
        raise ValidationError(next_name, f"the same structure (keys) as `{obs_name}`", describe(next_states))
    pairs = zip(observation_items(states, obs_name), observation_items(next_states, next_name))
    for (name, s), (next_item, ns) in pairs:
        if ns.shape != s.shape or ns.dtype != s.dtype:
            raise ValidationError(next_item, f"shape {tuple(s.shape)} and dtype {s.dtype}", describe(ns))
        check_finite(s, name)
        check_finite(ns, next_item)

    if dones is not None and (terminated is not None or truncated is not None):
        raise ValidationError(
            "dones",
            "absent when `terminated` or `truncated` is given",
            describe(dones),
            "`dones` is a shorthand for `terminated`; pass one or the other.",
        )
    terminated = terminated if dones is None else dones
    no_flags = torch.zeros(length, dtype=torch.bool)
    terminated = no_flags if terminated is None else flag_tensor(terminated, "terminated", length)
    truncated = no_flags.clone() if truncated is None else flag_tensor(truncated, "truncated", length)
    for name, flags in (("terminated", terminated), ("truncated", truncated)):
        if length > 1 and bool(flags[:-1].any()):
            step = int(flags[:-1].nonzero()[0])
            raise ValidationError(
                name,
                "True only at the last step (one Episode is one contiguous run)",
                f"True at step {step} of {length}",
                "Split the stream into episodes first, e.g. with hippogym.segmentation.TerminalSegmenter.",
            )

    raw_infos = infos
    infos = None
    if raw_infos is not None and not isinstance(raw_infos, Mapping):
        raw_infos = stack_info_rows(raw_infos, length)
    if raw_infos:
        infos = {}
        for key, value in raw_infos.items():
            tensor = as_tensor(value, f"infos[{key!r}]")
            if tensor.dim() == 0 or tensor.shape[0] != length:
                raise ValidationError(f"infos[{key!r}]", f"an array with {length} rows", describe(tensor))
            infos[str(key)] = tensor
    if episode_id is not None and not isinstance(episode_id, (int, np.integer)):
        raise ValidationError("episode_id", "an int or None", describe(episode_id))
    if not isinstance(start_step, (int, np.integer)) or start_step < 0:
        raise ValidationError("start_step", "an int >= 0", describe(start_step))

    return {
        "states": states,
        "next_states": next_states,
        "actions": actions,
        "rewards": rewards,
        "terminated": terminated,
        "truncated": truncated,
        "infos": infos,
        "returns": target_tensor(returns, "returns", length),
        "advantages": target_tensor(advantages, "advantages", length),
        "episode_id": None if episode_id is None else int(episode_id),
        "start_step": int(start_step),
        "success": None if success is None else bool(success),
        "final_next_state_known": final_known,
    }


def trusted_episode_fields(
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
) -> dict[str, Any]:
    """The fields of an episode from numpy arrays a producer has already validated (no copies).

    The fast path behind :meth:`hippogym.Episode.from_validated` (see it for the guarantees the
    caller gives): only NaN/inf are rejected (one ``np.isfinite(x).all()`` per float array). The
    arrays are taken over as tensors sharing their memory (``rewards`` becomes a new float32
    array); the flags become ``[T]`` arrays that are ``False`` except at the last step.

    Args:
        states: ``[T, ...]`` observations (or a dict of them).
        next_states: ``[T, ...]`` next observations, same layout as ``states``.
        actions: ``[T, ...]`` actions.
        rewards: ``[T]`` rewards.
        terminated: Whether the last step is terminal.
        truncated: Whether the last step was truncated.
        infos: A dict of ``[T, ...]`` arrays, or ``None``.
        episode_id: An int or ``None``.
        start_step: An int ``>= 0``.
        success: The outcome, or ``None``.

    Returns:
        The episode's fields by attribute name, in the attribute order of ``Episode``
        (``metadata`` too, an empty dict; the final next observation is always known).

    Raises:
        ValidationError: An array holds NaN/inf.

    Example:
        >>> import numpy as np
        >>> fields = trusted_episode_fields(
        ...     np.zeros((2, 1)), np.ones((2, 1)), np.zeros(2, np.int64), np.ones(2), True, False, None, 3, 0, None
        ... )
        >>> fields["terminated"].tolist(), fields["rewards"].dtype, fields["episode_id"]
        ([False, True], torch.float32, 3)
    """
    actions = np.ascontiguousarray(actions)
    if actions.dtype == np.bool_:
        actions = actions.astype(np.int64)
    length = actions.shape[0]
    with np.errstate(over="ignore"):  # a reward beyond float32 becomes inf and is rejected below
        rewards = np.array(rewards, dtype=np.float32)
    finite_np(actions, "actions")
    finite_np(rewards, "rewards")
    if isinstance(states, dict):
        st = {k: finite_np(np.ascontiguousarray(states[k]), f"states[{k!r}]") for k in sorted(states)}
        nst = {k: finite_np(np.ascontiguousarray(next_states[k]), f"next_states[{k!r}]") for k in st}  # type: ignore[index]
        st_t: Observation = {k: torch.from_numpy(v) for k, v in st.items()}
        nst_t: Observation = {k: torch.from_numpy(v) for k, v in nst.items()}
    else:
        st_t = torch.from_numpy(finite_np(np.ascontiguousarray(states), "states"))
        nst_t = torch.from_numpy(finite_np(np.ascontiguousarray(next_states), "next_states"))  # type: ignore[arg-type]
    term = np.zeros(length, dtype=np.bool_)
    trunc = np.zeros(length, dtype=np.bool_)
    term[-1] = terminated
    trunc[-1] = truncated
    return dict(
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
        returns=None,
        advantages=None,
    )
