"""Turn transitions into the flat float vectors the encoder reads.

The encoder input for one step is ``[flattened observation, action slot, reward slot]``
(``input_dim = obs_dim + action_dim + 1``), the layout the README's quickstart builds by hand.

**What a key is computed from.** Retrieval asks "have I been in a situation like this?". By default
a key sees the **observation only** (with ``context > 1``, the window of the last ``context``
observations of its unit): the action slot and the reward slot are zero. ``key_action=True`` puts
the action in the key (to search offline data by behaviour), ``key_reward=True`` the reward (the
layout of memories saved before keys and queries were unified, which load with it on). Rewards and
returns are values a unit carries, not part of where it is.

**Queries go through exactly the same function.** Whatever form the caller passes (an observation,
batched or not, a dict for Dict spaces, or a full encoder input ``[state, action, reward]`` as the
quickstart builds it), :meth:`TransitionFeaturizer.query_np` keeps the slots a key is made of and
sets every other slot to zero, as it is in the keys. A query built from a stored observation
therefore equals that transition's key input exactly, whatever action or reward the caller put in
the ignored slots, and scores 1 (to float rounding) on its own unit. Ignored slots must still be
finite: NaN or inf anywhere in a query is refused.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from hippogym.episode import Observation
from hippogym.errors import DimensionMismatchError, ValidationError, describe
from hippogym.types import PLAIN, FieldSpec, ObservationLayout, ObservationWindow  # noqa: F401 (re-exported)

__all__ = ["FieldSpec", "ObservationLayout", "TransitionFeaturizer"]

#: Float dtypes the numpy query path handles (torch dtype -> numpy dtype).
_FLOATS = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


class TransitionFeaturizer:
    """Builds encoder inputs ``[obs_flat, action_features, reward]`` for keys and queries.

    Args:
        layout: Observation layout.
        action_shape: Per-step action shape.
        num_actions: For discrete (integer) actions, the number of actions: they are one-hot
            encoded. ``None`` casts actions to float as they are.
        key_action: Whether the action slot carries the action (``True``) or is zero (``False``,
            default; see the module docstring).
        key_reward: Whether the reward slot carries the reward (``True``: the layout of memories
            saved before keys were observation-only) or is zero (``False``, default).
        context: Number of consecutive steps (ending at the current one, clamped at the start of
            its unit) concatenated into one input, for sequence backbones. ``1`` = no context.
    """

    def __init__(
        self,
        layout: ObservationLayout,
        action_shape: tuple[int, ...],
        num_actions: int | None = None,
        key_action: bool = False,
        context: int = 1,
        key_reward: bool = False,
    ) -> None:
        if context < 1:
            raise ValidationError("context", "an int >= 1", repr(context))
        self.layout = layout
        self.action_shape = tuple(int(s) for s in action_shape)
        self.num_actions = None if num_actions is None else int(num_actions)
        self.key_action = bool(key_action)
        self.key_reward = bool(key_reward)
        self.context = int(context)
        n = 1
        for s in self.action_shape:
            n *= s
        self.action_dim = n * self.num_actions if self.num_actions else n
        self.obs_dim = layout.flat_dim
        self.step_dim = self.obs_dim + self.action_dim + 1
        self.dim = self.step_dim * self.context
        # Encoder-input columns that are not part of a key (zeroed in keys and queries alike).
        ignored = np.zeros(self.step_dim, dtype=bool)
        ignored[self.obs_dim : self.obs_dim + self.action_dim] = not self.key_action
        ignored[-1] = not self.key_reward
        self.ignored_columns = np.flatnonzero(np.tile(ignored, self.context))

    def step_features(self, obs: Observation, actions: Tensor | None, rewards: Tensor | None) -> Tensor:
        """Per-step features ``[B, step_dim]`` (no context)."""
        flat = self.layout.flatten(obs)
        batch = flat.shape[0]
        out = torch.zeros(batch, self.step_dim, dtype=torch.float32)
        out[:, : self.obs_dim] = flat
        if self.key_action and actions is not None:
            a = actions.reshape(batch, -1)
            if self.num_actions:
                a = torch.nn.functional.one_hot(a.long().clamp(0, self.num_actions - 1), self.num_actions).reshape(batch, -1)
            out[:, self.obs_dim : self.obs_dim + self.action_dim] = a.to(torch.float32)
        if self.key_reward and rewards is not None:
            out[:, -1] = rewards.reshape(batch).to(torch.float32)
        return out

    def with_context(self, steps: Tensor, offsets: Tensor) -> Tensor:
        """Stack each row with its ``context - 1`` predecessors.

        Args:
            steps: Step features ``[N, step_dim]`` of consecutive rows.
            offsets: ``[N]`` position of each row within its unit (so the window never crosses
                into the previous unit).
        """
        if self.context == 1:
            return steps
        n = steps.shape[0]
        lags = torch.arange(self.context - 1, -1, -1)
        back = torch.minimum(lags.unsqueeze(0), offsets.unsqueeze(1))  # [N, context]
        idx = torch.arange(n).unsqueeze(1) - back
        return steps[idx].reshape(n, self.dim)

    def episode_features(self, states: Observation, actions: Tensor, rewards: Tensor) -> Tensor:
        """Features for every step of one unit ``[T, dim]``."""
        if self.context == 1 and not self.key_action and not self.key_reward:
            fast = self._episode_fast(states)
            if fast is not None:
                return fast
        steps = self.step_features(states, actions, rewards)
        return self.with_context(steps, torch.arange(steps.shape[0]))

    def _episode_fast(self, states: Observation) -> Tensor | None:
        """:meth:`step_features` in numpy for one float observation field (bitwise equal)."""
        f = self.layout.fields[0]
        if self.layout.is_dict or f.dtype not in _FLOATS or not isinstance(states, Tensor) or states.dtype != f.dtype:
            return None
        try:
            obs = states.numpy()
        except (TypeError, RuntimeError):
            return None
        out = np.zeros((obs.shape[0], self.step_dim), dtype=np.float32)
        out[:, : self.obs_dim] = obs.reshape(obs.shape[0], -1)
        return torch.from_numpy(out)

    def query(self, query: Any) -> Tensor:
        """Normalise a user query to ``[Q, dim]`` float32.

        Accepts an encoder-input vector ``[dim]`` / ``[Q, dim]`` (as built in the quickstart), or an
        observation ``[...]`` / ``[Q, ...]`` (dict for Dict spaces); with ``context > 1`` a single
        observation is repeated across the window. Slots that are not part of a key (the action
        unless ``key_action``, the reward unless ``key_reward``) are set to zero, as in the keys,
        whatever the caller put there. The result never shares memory with ``query``.
        """
        return torch.from_numpy(self.query_np(query))

    def query_np(self, query: Any) -> np.ndarray:
        """:meth:`query` as a new float32 numpy array ``[Q, dim]``.

        Tensors and arrays of floats (the replay hot path: one observation per env step) are handled
        in numpy, which costs a few µs instead of a few dozen; anything else takes the torch path.
        The two give bitwise-identical results.
        """
        if isinstance(query, ObservationWindow):
            return self.window_query_np(query)
        if isinstance(query, (list, tuple)) and query and all(isinstance(q, ObservationWindow) for q in query):
            return np.concatenate([self.window_query_np(q) for q in query])  # one window per query
        out = self._query_fast(query)
        if out is None:
            out = np.array(self._query_torch(query).numpy(), dtype=np.float32, copy=True)
        return out

    def window_query_np(self, window: ObservationWindow) -> np.ndarray:
        """The encoder input ``[1, dim]`` of the agent's recent observations (oldest first).

        Built exactly as the key of the window's last step: the last ``context`` steps, a window
        shorter than ``context`` repeating its oldest step (as a key repeats its unit's first step).
        Action and reward slots are zero.

        Raises:
            ValidationError: An empty window, observations of another layout, NaN or inf.
        """
        obs = window.observations
        if len(window) == 0:
            raise ValidationError("query_state", "an ObservationWindow of at least one observation", "an empty one")
        names = [f.name for f in self.layout.fields]
        if isinstance(obs, Mapping):
            fields = {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}
        elif isinstance(obs, (Tensor, np.ndarray)):
            fields = {names[0]: torch.as_tensor(obs)}
        else:
            seq = list(obs)
            if isinstance(seq[0], Mapping):
                fields = {k: torch.as_tensor(np.stack([np.asarray(o[k]) for o in seq])) for k in seq[0]}
            else:
                fields = {names[0]: torch.as_tensor(np.stack([np.asarray(o) for o in seq]))}
        fields = {f.name: fields[f.name].to(f.dtype) if f.name in fields else None for f in self.layout.fields}
        missing = [k for k, v in fields.items() if v is None]
        if missing:
            raise ValidationError("query_state", f"window fields {names}", f"no {missing}")
        batch = fields if self.layout.is_dict else fields[names[0]]
        self.layout.check(batch, "query_state")
        steps = self.step_features(batch, None, None)
        if not bool(torch.isfinite(steps).all()):
            raise ValidationError("query_state", "finite values", "NaN or inf")
        n = steps.shape[0]
        take = torch.clamp(torch.arange(n - self.context, n), min=0)
        return np.array(steps[take].reshape(1, self.dim).numpy(), dtype=np.float32, copy=True)

    def _query_fast(self, query: Any) -> np.ndarray | None:
        if isinstance(query, Tensor):
            if query.device.type != "cpu" or query.requires_grad or query.dtype not in _FLOATS:
                return None
            q = query.numpy()
        elif isinstance(query, np.ndarray) and query.dtype.kind == "f":
            q = query
        else:
            return None
        if q.ndim in (1, 2) and q.shape[-1] == self.dim:
            out = np.array(q.reshape(-1, self.dim), dtype=np.float32, copy=True)
            if not np.isfinite(out).all():
                raise ValidationError("query_state", "finite values", "NaN or inf")
            out[:, self.ignored_columns] = 0.0
            return out
        f = self.layout.fields[0]
        if self.layout.is_dict or f.dtype not in _FLOATS:
            return None
        if q.shape == f.shape:
            q = q[None]
        if q.shape[1:] != f.shape:
            return None  # the torch path raises the detailed error
        flat = q.reshape(q.shape[0], -1).astype(_FLOATS[f.dtype], copy=False)
        out = np.zeros((q.shape[0], self.step_dim), dtype=np.float32)
        out[:, : self.obs_dim] = flat
        if self.context > 1:
            out = np.tile(out, (1, self.context))
        if not np.isfinite(out).all():
            raise ValidationError("query_state", "finite values", "NaN or inf")
        return out

    def _query_torch(self, query: Any) -> Tensor:
        if isinstance(query, Mapping):
            obs = {k: torch.as_tensor(v) for k, v in query.items()}
            first = self.layout.fields[0]
            if obs[first.name].dim() == len(first.shape):
                obs = {k: v.unsqueeze(0) for k, v in obs.items()}
            obs = {f.name: obs[f.name].to(f.dtype) if f.name in obs else obs[f.name] for f in self.layout.fields}
            self.layout.check(obs, "query_state")
            steps = self.step_features(obs, None, None)
            return steps.repeat(1, self.context)
        q = torch.as_tensor(query)
        if q.dim() >= 1 and q.shape[-1] == self.dim and (q.dim() <= 2):
            out = q.reshape(-1, self.dim).to(torch.float32).clone()
            if not bool(torch.isfinite(out).all()):
                raise ValidationError("query_state", "finite values", "NaN or inf")
            out[:, torch.from_numpy(self.ignored_columns)] = 0.0
        else:
            f = self.layout.fields[0]
            if self.layout.is_dict:
                raise ValidationError("query_state", f"a vector of size {self.dim} or a dict observation", describe(q))
            if tuple(q.shape) == f.shape:
                q = q.unsqueeze(0)
            if tuple(q.shape[1:]) != f.shape:
                raise DimensionMismatchError(
                    "query_state",
                    f"an encoder input of size {self.dim} ([Q, {self.dim}]) or an observation of shape {f.shape}",
                    describe(q),
                )
            out = self.step_features(q.to(f.dtype), None, None).repeat(1, self.context)
        if not bool(torch.isfinite(out).all()):
            raise ValidationError("query_state", "finite values", "NaN or inf")
        return out

    def config(self) -> dict[str, Any]:
        """JSON description (for manifests and :meth:`from_config`)."""
        return {
            "layout": self.layout.to_json(),
            "action_shape": list(self.action_shape),
            "num_actions": self.num_actions,
            "key_action": self.key_action,
            "context": self.context,
            "key_reward": self.key_reward,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TransitionFeaturizer":
        """Rebuild from :meth:`config` (a config without ``key_reward`` predates observation-only keys: on)."""
        return cls(
            ObservationLayout.from_json(config["layout"]),
            tuple(config["action_shape"]),
            config.get("num_actions"),
            bool(config.get("key_action", False)),
            int(config.get("context", 1)),
            bool(config.get("key_reward", True)),
        )
