"""Consolidation ("sleep"): reward-aware contrastive training of the encoder, then a key refresh.

Each step draws anchor transitions uniformly from memory. The positive of an anchor is a transition
of the same unit a few steps away (a *temporal* positive), embedded by the momentum key encoder.
Logits are the cosine similarities between online anchor embeddings and key-encoded positives of
the whole batch, divided by ``temperature``. The target of each row mixes two distributions:

* the temporal target: its own positive (classic InfoNCE), weight ``1 - reward_weight``;
* the reward target: all positives in the batch, weighted by how close their value is to the
  anchor's (``exp(-|r_i - r_j| / bandwidth)`` on ranks, or on standardised raw values), weight
  ``reward_weight``. The value is the anchor's unit return (``value="unit_return"``, default) or
  its own discounted return-to-go inside its unit (``value="return_to_go"``, discount ``gamma``):
  the second separates the early and late steps of one episode, which is what a value estimate
  read from neighbouring keys needs (``benchmarks/rl/consolidation_values.py`` measures both).

So ``reward_weight`` 0 clusters by time (what happened together), 1 by outcome (what paid off the
same), and the default 0.5 does both. After the steps the key encoder has moved (EMA), so stored keys
are refreshed:

* ``refresh="auto"`` (default): all of them while the memory holds at most ``refresh_rows``
  transitions (16,384), then about ``refresh_rows`` per call, whole units, oldest keys first, so a
  call costs about the same at a million transitions as at 16k. A key is then at most
  ``ceil(N / refresh_rows)`` calls old; the call's metrics report ``stale_fraction``.
* ``refresh="full"``: all of them every call (O(N)).
* ``refresh="rolling"``: a fixed share of the units per call (``refresh_fraction``), which bounds
  staleness to ``ceil(1 / refresh_fraction)`` calls but grows with N.
* ``refresh="none"``: never.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from hippogym.consolidation.quality import key_staleness, memory_quality
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.features import TransitionFeaturizer
from hippogym.errors import EmptyMemoryError, ValidationError, describe
from hippogym.progress import progress_bar
from hippogym.returns import discounted_returns

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.memory.store import MemoryStore

__all__ = ["Consolidator", "reencode", "reward_targets"]

logger = logging.getLogger(__name__)


def reward_targets(returns: Tensor, mode: str = "rank", bandwidth: float | None = None) -> Tensor:
    """Row-stochastic matrix of reward-based positives for a batch.

    Args:
        returns: ``[B]`` unit returns of the anchors.
        mode: ``"rank"`` (average ranks in [0, 1], robust to scale and outliers) or ``"raw"``
            (standardised returns).
        bandwidth: Kernel width (default 0.1 for ranks, 0.5 for raw).

    Returns:
        ``[B, B]`` with rows summing to 1.
    """
    r = returns.double()
    b = r.shape[0]
    if mode == "rank":
        less = (r.unsqueeze(0) < r.unsqueeze(1)).sum(1).double()
        equal = (r.unsqueeze(0) == r.unsqueeze(1)).sum(1).double()
        z = (less + 0.5 * (equal - 1)) / max(b - 1, 1)
        h = 0.1 if bandwidth is None else bandwidth
    elif mode == "raw":
        z = (r - r.mean()) / r.std().clamp_min(1e-8) if b > 1 else r * 0
        h = 0.5 if bandwidth is None else bandwidth
    else:
        raise ValidationError("reward_mode", "'rank' or 'raw'", repr(mode))
    kernel = torch.exp(-(z.unsqueeze(0) - z.unsqueeze(1)).abs() / h)
    return (kernel / kernel.sum(1, keepdim=True)).float()


@torch.no_grad()
def reencode(
    store: "MemoryStore",
    encoder: DualEncoder,
    featurizer: TransitionFeaturizer,
    slots: Tensor,
    whole: bool = True,
    chunk: int = 16384,
) -> int:
    """Re-encode the keys of units ``slots`` with ``encoder``'s key encoder, then their geometry.

    Args:
        store: The memory.
        encoder: The encoder whose key part writes the new keys (its version is recorded).
        featurizer: The buffer's featurizer.
        slots: Units to re-encode.
        whole: ``slots`` are every unit: rebuild the whole retrieval index (else re-file those units).
        chunk: Transitions per encoder pass.

    Returns:
        Number of transitions re-encoded.
    """
    rows, _ = store.rows_of(slots)
    version = int(encoder.version)
    for part in rows.split(chunk):
        store.rekey(part, encoder.encode_keys(store.features(part, featurizer)), version)
    store.update_geometry(slots, rebuild_index=whole)
    return int(rows.numel())


class Consolidator:
    """Trains a :class:`~hippogym.DualEncoder` on the memory's contents.

    Args:
        encoder: The encoder to train (its online part; the key part follows by momentum).
        temperature: InfoNCE temperature (0.07; lower = sharper, try 0.05 for sparse rewards).
        reward_weight: Mix of reward-based vs temporal positives in [0, 1] (0.5).
        lr: Adam learning rate.
        reward_mode: ``"rank"`` or ``"raw"`` reward weighting.
        reward_bandwidth: Kernel width of the reward targets.
        temporal_window: Max distance (steps) of a temporal positive.
        refresh: ``"auto"``, ``"full"``, ``"rolling"`` or ``"none"`` (see the module docstring).
        refresh_fraction: Share of units re-encoded per call with ``"rolling"``.
        refresh_rows: Transitions re-encoded per call with ``"auto"`` once the memory is larger.
        seed: Seed of the consolidator's generator.
        value: What the reward target compares: ``"unit_return"`` (the anchor's unit return) or
            ``"return_to_go"`` (each transition's discounted return to the end of its unit).
        gamma: Discount of ``"return_to_go"``.
    """

    def __init__(
        self,
        encoder: DualEncoder,
        temperature: float = 0.07,
        reward_weight: float = 0.5,
        lr: float = 3e-4,
        reward_mode: str = "rank",
        reward_bandwidth: float | None = None,
        temporal_window: int = 4,
        refresh: str = "auto",
        refresh_fraction: float = 0.25,
        refresh_rows: int = 16_384,
        seed: int | None = None,
        value: str = "unit_return",
        gamma: float = 0.99,
    ) -> None:
        if not isinstance(encoder, DualEncoder):
            raise ValidationError("encoder", "a hippogym.DualEncoder", describe(encoder))
        if not temperature > 0:
            raise ValidationError("temperature", "a float > 0", repr(temperature))
        if not 0.0 <= reward_weight <= 1.0:
            raise ValidationError("reward_weight", "a float in [0, 1]", repr(reward_weight))
        if reward_mode not in ("rank", "raw"):
            raise ValidationError("reward_mode", "'rank' or 'raw'", repr(reward_mode))
        if refresh not in ("auto", "full", "rolling", "none"):
            raise ValidationError("refresh", "'auto', 'full', 'rolling' or 'none'", repr(refresh))
        if isinstance(refresh_rows, bool) or not isinstance(refresh_rows, int) or refresh_rows < 1:
            raise ValidationError("refresh_rows", "an int >= 1", describe(refresh_rows))
        if not 0.0 < refresh_fraction <= 1.0:
            raise ValidationError("refresh_fraction", "a float in (0, 1]", repr(refresh_fraction))
        if value not in ("unit_return", "return_to_go"):
            raise ValidationError("value", "'unit_return' or 'return_to_go'", repr(value))
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= float(gamma) <= 1.0:
            raise ValidationError("gamma", "a float in [0, 1]", describe(gamma))
        self.value, self.gamma = value, float(gamma)
        # (store, its mutation counter, per-row returns-to-go): reused while that memory is unchanged.
        self._rtg: tuple[Any, int, Tensor] | None = None
        self.encoder = encoder
        self.temperature, self.reward_weight, self.lr = float(temperature), float(reward_weight), float(lr)
        self.reward_mode, self.reward_bandwidth = reward_mode, reward_bandwidth
        self.temporal_window, self.refresh = int(temporal_window), refresh
        self.refresh_fraction = float(refresh_fraction)
        self.refresh_rows = int(refresh_rows)
        self.optimizer = torch.optim.Adam(encoder.online.parameters(), lr=self.lr)
        self.generator = torch.Generator().manual_seed(torch.Generator().seed() if seed is None else int(seed))
        self.steps_done = 0
        self._cursor = 0

    # ------------------------------------------------------------------ training
    def _positives(self, store: "MemoryStore", rows: Tensor) -> Tensor:
        slots = store.row_slot[rows]
        start, length = store.unit_start[slots], store.unit_length[slots]
        w = self.temporal_window
        delta = torch.randint(1, w + 1, rows.shape, generator=self.generator)
        sign = torch.randint(0, 2, rows.shape, generator=self.generator) * 2 - 1
        offset = (rows - start + sign * delta).clamp(min=0)
        offset = torch.minimum(offset, length - 1)
        return start + offset

    def values(self, store: "MemoryStore", rows: Tensor) -> Tensor:
        """The values the reward target compares for stored ``rows`` (see ``value``).

        Returns-to-go are computed for every stored row at once (vectorised, O(N)) and reused
        while the memory is unchanged, so a consolidation call pays for them once.
        """
        if self.value == "unit_return":
            return store.unit_return[store.row_slot[rows]]
        cached = self._rtg
        if cached is None or cached[0] is not store or cached[1] != store.mutations:
            slots = store.live_slots()
            rtg = discounted_returns(
                store.rewards.numpy(), store.unit_start[slots].numpy(), store.unit_length[slots].numpy(), self.gamma
            )
            cached = self._rtg = (store, store.mutations, torch.from_numpy(rtg.astype("float32")))
        return cached[2][rows]

    def draw(self, store: "MemoryStore", featurizer: TransitionFeaturizer, batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
        """One batch of the objective's inputs: anchor features, positive features, reward targets.

        Everything read from the memory is in these three tensors, so training on them needs no
        further access to the store (what background consolidation relies on).
        """
        rows = store.sample_rows(batch_size, generator=self.generator)
        pos = self._positives(store, rows)
        targets = reward_targets(self.values(store, rows), self.reward_mode, self.reward_bandwidth)
        return store.features(rows, featurizer), store.features(pos, featurizer), targets

    def batch_loss(self, encoder: DualEncoder, anchors: Tensor, positives: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """The objective on one drawn batch (with gradient on ``encoder``'s online part)."""
        q = encoder.encode_queries(anchors)
        k = encoder.encode_keys(positives)
        log_p = F.log_softmax(q @ k.T / self.temperature, dim=1)
        temporal = -log_p.diagonal().mean()
        reward = -(targets * log_p).sum(1).mean()
        total = (1.0 - self.reward_weight) * temporal + self.reward_weight * reward
        return {"loss": total, "temporal_loss": temporal.detach(), "reward_loss": reward.detach()}

    def loss(self, store: "MemoryStore", featurizer: TransitionFeaturizer, batch_size: int) -> dict[str, Tensor]:
        """One batch of the consolidation objective (with gradient on the online encoder)."""
        return self.batch_loss(self.encoder, *self.draw(store, featurizer, batch_size))

    def train_steps(
        self,
        encoder: DualEncoder,
        optimizer: torch.optim.Optimizer,
        batches: Any,
        steps: int,
        start_step: int,
        progress: bool = False,
        tb_writer: Any = None,
        tb_log_every: int = 10,
    ) -> dict[str, float]:
        """Run ``steps`` optimizer steps on ``encoder`` with batches from ``batches(i)``.

        Returns the loss means and ``loss_first``/``loss_last``. Shared by :meth:`consolidate`
        (the buffer's encoder, batches drawn as it goes) and background consolidation (a copy of
        the encoder, batches drawn beforehand).
        """
        encoder.train(True)
        sums = {"loss": 0.0, "temporal_loss": 0.0, "reward_loss": 0.0}
        first = last = math.nan
        bar = progress_bar(total=steps, desc="consolidate", unit="step", enabled=progress)
        for i in range(steps):
            parts = self.batch_loss(encoder, *batches(i))
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            encoder.momentum_update()
            value = float(parts["loss"].detach())
            first = value if i == 0 else first
            last = value
            for key in sums:
                sums[key] += float(parts[key].detach())
            bar.update(1)
            if tb_writer is not None and (i % tb_log_every == 0 or i == steps - 1):
                for key in sums:
                    tb_writer.add_scalar(f"hippo/consolidation/{key}", float(parts[key].detach()), start_step + i)
            if progress and (i % 10 == 0 or i == steps - 1):
                bar.set_postfix_str(f"loss {value:.4f}")
        bar.close()
        encoder.train(False)
        out = {k: v / max(steps, 1) for k, v in sums.items()}
        out.update(loss_first=first, loss_last=last)
        return out

    def consolidate(
        self,
        store: "MemoryStore",
        featurizer: TransitionFeaturizer,
        steps: int = 50,
        batch_size: int = 64,
        report_quality: bool = False,
        progress: bool = False,
        tb_writer: Any = None,
        tb_log_every: int = 10,
    ) -> dict[str, Any]:
        """Run ``steps`` training steps, then refresh keys.

        With ``progress=True`` a bar (tqdm if installed, else INFO log lines) counts the steps and
        shows the running loss. With a ``tb_writer`` (anything with ``add_scalar(tag, value,
        step)``, e.g. ``torch.utils.tensorboard.SummaryWriter``), the losses are written every
        ``tb_log_every`` steps as ``hippo/consolidation/{loss,temporal_loss,reward_loss}`` at the
        consolidator's global step, and the call's other metrics (timings, keys refreshed, quality
        figures) once at its end under the same prefix.

        Returns:
            Metrics: ``loss``, ``temporal_loss``, ``reward_loss`` (means over the steps),
            ``loss_first``/``loss_last``, ``steps``, ``steps_per_s`` (training only),
            ``refresh_s`` and ``refresh_share`` (share of the call spent re-encoding keys),
            ``keys_refreshed``; with ``report_quality`` the figures of
            :func:`~hippogym.consolidation.quality.memory_quality` after the call, and the same
            figures before it prefixed ``before_``.

        Raises:
            EmptyMemoryError: The memory holds fewer than 2 transitions.
        """
        if store.num_transitions < 2:
            raise EmptyMemoryError("Consolidation needs at least 2 stored transitions: add episodes first.")
        if not isinstance(steps, int) or steps < 0:
            raise ValidationError("steps", "an int >= 0", describe(steps))
        if not isinstance(batch_size, int) or batch_size < 2:
            raise ValidationError("batch_size", "an int >= 2", describe(batch_size))
        if tb_writer is not None and not callable(getattr(tb_writer, "add_scalar", None)):
            raise ValidationError("tb_writer", "an object with add_scalar(tag, value, step), or None", describe(tb_writer))
        if isinstance(tb_log_every, bool) or not isinstance(tb_log_every, int) or tb_log_every < 1:
            raise ValidationError("tb_log_every", "an int >= 1", describe(tb_log_every))
        metrics: dict[str, Any] = {}
        if report_quality:
            before = memory_quality(store, int(self.encoder.version))
            metrics.update({f"before_{k}": v for k, v in before.items()})
        t0 = time.perf_counter()
        trained = self.train_steps(
            self.encoder, self.optimizer, lambda i: self.draw(store, featurizer, batch_size), steps, self.steps_done,
            progress, tb_writer, tb_log_every,
        )
        return self.finish(store, featurizer, steps, trained, time.perf_counter() - t0, metrics, report_quality, tb_writer)

    def finish(
        self,
        store: "MemoryStore",
        featurizer: TransitionFeaturizer,
        steps: int,
        trained: Mapping[str, float],
        train_s: float,
        metrics: dict[str, Any],
        report_quality: bool = False,
        tb_writer: Any = None,
    ) -> dict[str, Any]:
        """After ``steps`` training steps: count them, refresh keys, gather the call's metrics."""
        self.steps_done += steps
        t1 = time.perf_counter()
        refreshed = self.refresh_keys(store, featurizer)
        t2 = time.perf_counter()
        metrics.update(trained)
        metrics.update(
            steps=steps,
            steps_per_s=steps / train_s if train_s > 0 else math.inf,
            refresh_s=t2 - t1, refresh_share=(t2 - t1) / max(t2 - t1 + train_s, 1e-12), keys_refreshed=refreshed,
            stale_fraction=key_staleness(store, int(self.encoder.version))["stale_fraction"],
        )
        if report_quality:
            metrics.update(memory_quality(store, int(self.encoder.version)))
        if tb_writer is not None:
            for key, value in metrics.items():
                losses = ("loss", "temporal_loss", "reward_loss")
                if key not in losses and isinstance(value, (int, float)) and math.isfinite(value):
                    tb_writer.add_scalar(f"hippo/consolidation/{key}", float(value), self.steps_done)
        logger.info("consolidated %d steps: loss %.4f -> %.4f", steps, trained["loss_first"], trained["loss_last"])
        return metrics

    @torch.no_grad()
    def refresh_keys(self, store: "MemoryStore", featurizer: TransitionFeaturizer, chunk: int = 16384) -> int:
        """Re-encode stored keys with the current key encoder (all, or a rolling share).

        Returns:
            Number of transitions re-encoded.
        """
        if self.refresh == "none" or store.num_units == 0:
            return 0
        slots = store.live_slots()
        full = self.refresh == "full" or (self.refresh == "auto" and store.num_transitions <= self.refresh_rows)
        if self.refresh == "rolling":
            n = max(1, math.ceil(self.refresh_fraction * slots.numel()))
            pick = (torch.arange(n) + self._cursor) % slots.numel()
            self._cursor = int((self._cursor + n) % slots.numel())
            slots = slots[pick]
        elif not full:  # "auto" on a large memory: whole units, oldest first, until refresh_rows rows
            order = torch.roll(slots, -(self._cursor % slots.numel()))
            lengths = torch.cumsum(store.unit_length[order], 0)
            n = min(int(torch.searchsorted(lengths, self.refresh_rows)) + 1, order.numel())
            self._cursor = int((self._cursor + n) % slots.numel())
            slots = order[:n]
        return reencode(store, self.encoder, featurizer, slots, whole=full, chunk=chunk)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """JSON description of the hyperparameters."""
        return {
            "temperature": self.temperature, "reward_weight": self.reward_weight, "lr": self.lr,
            "reward_mode": self.reward_mode, "reward_bandwidth": self.reward_bandwidth,
            "temporal_window": self.temporal_window, "refresh": self.refresh,
            "refresh_fraction": self.refresh_fraction, "refresh_rows": self.refresh_rows, "value": self.value,
            "gamma": self.gamma,
        }

    def state_dict(self) -> dict[str, Any]:
        """Optimizer moments, step count, cursor and generator state (tensors and scalars)."""
        opt = self.optimizer.state_dict()
        state: dict[str, Any] = {"steps_done": self.steps_done, "cursor": self._cursor, "generator": self.generator.get_state()}
        for pid, pstate in opt["state"].items():
            for name, value in pstate.items():
                state[f"optimizer.{pid}.{name}"] = torch.as_tensor(value)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (optimizer moments included, so training resumes exactly)."""
        self.steps_done = int(state["steps_done"])
        self._cursor = int(state["cursor"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
        opt = self.optimizer.state_dict()
        per_param: dict[int, dict[str, Tensor]] = {}
        for key, value in state.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                per_param.setdefault(int(pid), {})[name] = torch.as_tensor(value).clone()
        opt["state"] = per_param
        self.optimizer.load_state_dict(opt)

    @classmethod
    def from_config(cls, encoder: DualEncoder, config: Mapping[str, Any]) -> "Consolidator":
        """Rebuild from :meth:`config`."""
        return cls(encoder, **dict(config))
