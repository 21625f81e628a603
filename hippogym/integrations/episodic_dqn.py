"""``HippoDQN``: Stable-Baselines3's DQN with an episodic value term from the memory.

The memory stores whole units, so every sampled transition comes with the discounted return the
agent actually collected from it (its return-to-go, see :mod:`hippogym.returns`). ``HippoDQN``
adds to DQN's TD loss a one-sided term that pulls ``Q(s, a)`` up towards that return when the
network underestimates it:

``loss = TD(Q) + episodic_weight * mean(max(0, G - Q(s, a)) ** 2)``

This is the lower-bound form used by Episodic Memory DQN (Lin et al., 2018) and Self-Imitation
Learning (Oh et al., 2018): a return the agent has already achieved is a lower bound of the optimal
value, so pushing Q above it is safe, while the TD loss alone propagates a sparse reward back one
step per update. For a unit that did not end in termination (time limit, segment cut) the missing
tail is completed from the target network: ``G = G_partial + gamma^(L - t) * max_a Q_target(s_L)``.

``episodic_weight=0`` is plain DQN (the extra term is not even computed).

**Return-aware draws.** ``priority="td"`` feeds ``|TD error|`` back to a prioritised memory after
every gradient step (prioritised replay); ``priority="self_imitation"`` feeds
``max(0, G - Q(s, a))``, so transitions whose stored return still exceeds the value estimate are
replayed more, and those already learnt fade (self-imitation learning's prioritisation). Either
turns the buffer's prioritised base draws on; with
``hippo_kwargs=dict(semantic=SemanticConfig(rows="priority"))`` in the buffer kwargs the semantic
draws also pick rows inside a retrieved episode by the same priorities.

**Importance sampling.** Prioritised draws bias the updates towards what they prefer. With
``priority`` set, each sample's loss is scaled by its importance weight ``(N P(i)) ** -beta``,
normalised by the batch's largest (Schaul et al., 2016), and ``beta`` is annealed linearly from the
buffer's value at the first update to ``beta_final`` at the end of ``learn``. ``importance_weights=False``
turns the correction off (prioritised replay without it, what some implementations do).

The buffer must be a
:class:`~hippogym.integrations.sb3.HippoReplayBuffer`, whose samples carry ``returns``,
``return_discounts`` and ``tail_observations``; its ``gamma`` must equal the algorithm's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hippogym.errors import MissingDependencyError, ValidationError, describe

try:
    from stable_baselines3 import DQN
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("stable-baselines3", "sb3", "hippogym.integrations.episodic_dqn") from exc

__all__ = ["HippoDQN"]


class HippoDQN(DQN):
    """DQN whose loss also uses the returns the memory stored (EMDQN / self-imitation lower bound).

    Args:
        policy: As for :class:`stable_baselines3.DQN`.
        env: As for :class:`stable_baselines3.DQN`.
        episodic_weight: Weight of the episodic term (``0`` = plain DQN).
        priority: ``None`` (default: the buffer's draws as configured), ``"td"`` or
            ``"self_imitation"``: the priorities fed back to a prioritised memory (see above).
        importance_weights: Scale each sample's loss by its importance weight when ``priority``
            is set (default ``True``).
        beta_final: The importance-weight exponent at the end of training; ``beta`` rises
            linearly to it from the buffer's ``beta`` (``0.4`` for prioritised draws).
        **kwargs: Everything :class:`stable_baselines3.DQN` takes. ``replay_buffer_class`` defaults
            to :class:`~hippogym.integrations.sb3.HippoReplayBuffer`, with ``gamma`` passed on.

    Example:
        >>> model = HippoDQN("MlpPolicy", "CartPole-v1", episodic_weight=0.5, learning_starts=100)  # doctest: +SKIP
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        *,
        episodic_weight: float = 0.5,
        priority: str | None = None,
        importance_weights: bool = True,
        beta_final: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if isinstance(episodic_weight, bool) or not isinstance(episodic_weight, (int, float)) or not (
            np.isfinite(episodic_weight) and episodic_weight >= 0
        ):
            raise ValidationError("episodic_weight", "a finite float >= 0", describe(episodic_weight))
        self.episodic_weight = float(episodic_weight)
        if priority not in (None, "td", "self_imitation"):
            raise ValidationError("priority", "None, 'td' or 'self_imitation'", repr(priority))
        self.priority = priority
        if not isinstance(beta_final, (int, float)) or isinstance(beta_final, bool) or not 0 <= beta_final <= 1:
            raise ValidationError("beta_final", "a float in [0, 1]", describe(beta_final))
        self.importance_weights = bool(importance_weights)
        self.beta_final = float(beta_final)
        self._beta_start: float | None = None
        if kwargs.get("replay_buffer_class") is None:
            from hippogym.integrations.sb3 import HippoReplayBuffer

            kwargs["replay_buffer_class"] = HippoReplayBuffer
        gamma = kwargs.get("gamma", 0.99)
        buffer_kwargs = dict(kwargs.get("replay_buffer_kwargs") or {})
        buffer_kwargs.setdefault("gamma", gamma)
        if self.episodic_weight > 0 or priority == "self_imitation":
            buffer_kwargs.setdefault("returns", True)
        if priority is not None:
            buffer_kwargs.setdefault("prioritized", True)
        if float(buffer_kwargs["gamma"]) != float(gamma):
            raise ValidationError(
                "replay_buffer_kwargs['gamma']", f"equal to the algorithm's gamma={gamma}", repr(buffer_kwargs["gamma"])
            )
        kwargs["replay_buffer_kwargs"] = buffer_kwargs
        super().__init__(policy, env, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """One round of ``gradient_steps`` updates: DQN's, plus the episodic term."""
        if self.episodic_weight == 0.0 and self.priority is None:
            return super().train(gradient_steps, batch_size)
        needs_returns = self.episodic_weight > 0 or self.priority == "self_imitation"
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, episodic_losses, gaps = [], [], []
        weighted = self.priority is not None and self.importance_weights
        if weighted:
            self._anneal_beta()
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            returns = getattr(data, "returns", None)
            if returns is None and needs_returns:
                raise ValidationError(
                    "replay_buffer", "a HippoReplayBuffer whose samples carry `returns`", type(data).__name__
                )
            discounts = data.discounts if data.discounts is not None else self.gamma
            with torch.no_grad():
                next_q = self.q_net_target(data.next_observations).max(dim=1).values.reshape(-1, 1)
                target = data.rewards + (1 - data.dones) * discounts * next_q
                if needs_returns:
                    tail_q = self.q_net_target(data.tail_observations).max(dim=1).values.reshape(-1, 1)
                    episodic_target = returns + data.return_discounts * tail_q
            q = torch.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
            weights = self._batch_weights(q) if weighted else None
            td_loss = _weighted_mean(F.smooth_l1_loss(q, target, reduction="none"), weights)
            shortfall = torch.relu(episodic_target - q) if needs_returns else torch.zeros_like(q)
            episodic_loss = _weighted_mean(shortfall**2, weights)
            loss = td_loss + self.episodic_weight * episodic_loss
            if self.priority is not None:
                fed = (q - target).abs() if self.priority == "td" else shortfall
                self.replay_buffer.update_priorities(fed.detach().reshape(-1))  # type: ignore[union-attr]
            losses.append(td_loss.item())
            episodic_losses.append(episodic_loss.item())
            gaps.append(float((shortfall > 0).float().mean()))
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
        self.logger.record("train/episodic_loss", float(np.mean(episodic_losses)))
        self.logger.record("train/episodic_active_fraction", float(np.mean(gaps)))
        if weighted:
            self.logger.record("train/beta", float(self.replay_buffer.hippo.beta))  # type: ignore[union-attr]
        return None

    def _anneal_beta(self) -> None:
        """Set the buffer's ``beta`` for this point of training (linear from its start value)."""
        hippo = self.replay_buffer.hippo  # type: ignore[union-attr]
        if self._beta_start is None:
            self._beta_start = float(hippo.beta)
        progress = 1.0 - float(self._current_progress_remaining)
        hippo.beta = self._beta_start + (self.beta_final - self._beta_start) * min(max(progress, 0.0), 1.0)

    def _batch_weights(self, like: torch.Tensor) -> torch.Tensor:
        """The last batch's importance weights, ``[B, 1]`` on ``like``'s device."""
        batch = self.replay_buffer.adapter.last_batch  # type: ignore[union-attr]
        return batch.weights.to(like.device, like.dtype).reshape(-1, 1)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``mean(weights * values)``, or the plain mean without weights."""
    return values.mean() if weights is None else (weights * values).mean()
