"""Background consolidation: train on a worker thread while the agent keeps acting and learning.

A :class:`BackgroundConsolidation` splits one consolidation call in three:

1. **Draw** (caller's thread, at start): every batch of the call is drawn from the memory up front
   (anchor and positive features, reward targets), so the worker never reads the store while the
   caller writes to it.
2. **Train** (worker thread): a copy of the encoder, with a copy of the consolidator's optimizer
   state, takes the ``steps`` optimizer steps. The buffer's own encoder is untouched, so queries and
   inserts meanwhile use the weights they had; torch releases the GIL inside its kernels, so the
   work runs beside the caller's on a second core.
3. **Apply** (caller's thread, :meth:`apply`): the trained weights and optimizer state are copied
   into the buffer's encoder and consolidator, and stored keys are refreshed as a synchronous call
   would. Transitions added meanwhile get keys from the new encoder then.

Given the same generator state, the result equals a synchronous
:meth:`~hippogym.consolidation.Consolidator.consolidate` call made at start (the batches are the
same and training never reads the store), except that keys are refreshed at :meth:`apply` time.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import torch

from hippogym.errors import EmptyMemoryError, HippoError, ValidationError, describe

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.consolidation.consolidator import Consolidator
    from hippogym.encoders.features import TransitionFeaturizer
    from hippogym.memory.store import MemoryStore

__all__ = ["BackgroundConsolidation"]

logger = logging.getLogger(__name__)


class BackgroundConsolidation:
    """One consolidation call whose training runs on a worker thread.

    Args:
        consolidator: The buffer's consolidator (its encoder is the one updated by :meth:`apply`).
        store: The memory the batches are drawn from (now) and whose keys are refreshed (at apply).
        featurizer: The buffer's featurizer.
        steps: Optimizer steps.
        batch_size: Anchors per step.
        report_quality: Add the key-space figures before (now) and after (at apply).

    Raises:
        EmptyMemoryError: The memory holds fewer than 2 transitions.
        ValidationError: ``steps`` or ``batch_size`` out of range.
    """

    def __init__(
        self,
        consolidator: Consolidator,
        store: MemoryStore,
        featurizer: TransitionFeaturizer,
        steps: int = 50,
        batch_size: int = 64,
        report_quality: bool = False,
    ) -> None:
        from hippogym.consolidation.quality import memory_quality

        if store.num_transitions < 2:
            raise EmptyMemoryError("Consolidation needs at least 2 stored transitions: add episodes first.")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValidationError("steps", "an int >= 0", describe(steps))
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValidationError("batch_size", "an int >= 2", describe(batch_size))
        self.consolidator, self.store, self.featurizer = consolidator, store, featurizer
        self.steps, self.report_quality = steps, report_quality
        self.metrics: dict[str, Any] = {}
        if report_quality:
            before = memory_quality(store, int(consolidator.encoder.version))
            self.metrics.update({f"before_{k}": v for k, v in before.items()})
        self._batches = [consolidator.draw(store, featurizer, batch_size) for _ in range(steps)]
        self._encoder = copy.deepcopy(consolidator.encoder)
        self._optimizer = torch.optim.Adam(self._encoder.online.parameters(), lr=consolidator.lr)
        self._optimizer.load_state_dict(consolidator.optimizer.state_dict())
        self._start_step = consolidator.steps_done
        self._trained: dict[str, float] | None = None
        self._error: BaseException | None = None
        self._train_s = 0.0
        self._applied = False
        self._thread = threading.Thread(target=self._run, name="hippogym-consolidation", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            with torch.enable_grad():
                self._trained = self.consolidator.train_steps(
                    self._encoder, self._optimizer, self._batches.__getitem__, self.steps, self._start_step
                )
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread by apply()
            self._error = exc
        finally:
            self._train_s = time.perf_counter() - t0
            self._batches = []

    def done(self) -> bool:
        """Whether training has finished (then :meth:`apply` does not wait)."""
        return not self._thread.is_alive()

    @property
    def applied(self) -> bool:
        """Whether :meth:`apply` has installed the result."""
        return self._applied

    def wait(self, timeout: float | None = None) -> bool:
        """Block until training finishes or ``timeout`` seconds pass; returns :meth:`done`."""
        self._thread.join(timeout)
        return self.done()

    def apply(self, tb_writer: Any = None) -> dict[str, Any]:
        """Wait for training, install its result in the buffer's encoder, refresh keys.

        Returns:
            The metrics of a synchronous call (see
            :meth:`~hippogym.consolidation.Consolidator.consolidate`), with ``train_s``, the
            worker's training time.

        Raises:
            HippoError: Already applied, or training failed (the error is chained; the buffer's
                encoder is unchanged).
        """
        if self._applied:
            raise HippoError("This background consolidation has already been applied.")
        self._thread.join()
        self._applied = True
        if self._error is not None:
            raise HippoError(f"Background consolidation failed: {self._error!r}") from self._error
        encoder = self.consolidator.encoder
        encoder.load_state_dict(self._encoder.state_dict())
        self.consolidator.optimizer.load_state_dict(self._optimizer.state_dict())
        metrics = self.consolidator.finish(
            self.store, self.featurizer, self.steps, self._trained or {}, self._train_s, self.metrics,
            self.report_quality, tb_writer,
        )
        metrics["train_s"] = self._train_s
        self._encoder = None  # type: ignore[assignment]
        return metrics
