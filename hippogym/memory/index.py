"""Retrieval indexes: which units best match a query.

The retrieval unit is a stored unit (an episode or a segment). Its score for a query ``q`` is
**MaxSim**: the best cosine between ``q`` and the keys of its transitions. A query built from a
stored observation therefore scores 1.0 on its own unit, and retrieves it at rank 1.

Scoring every transition is too slow for a replay buffer (about 7 ms per query over 100k
transitions here), so each unit also keeps a centroid ``c`` and an angular radius ``r`` (the largest
angle between ``c`` and any of its keys). By the triangle inequality on the sphere a unit's MaxSim
is at most ``cos(max(0, angle(q, c) - r))``. :class:`TorchIndex` scores all centroids, evaluates the
exact MaxSim of the units with the best bounds, and stops as soon as no unevaluated unit's bound can
beat the current k-th best score: the answer is exact, and usually only a few units are opened.

:class:`FaissIndex` hands the centroid stage to FAISS (flat or IVF, GPU when available), maintained
incrementally (add and remove per unit, no rebuild per insert), then re-ranks a fixed number of
candidates by exact MaxSim. It is approximate; benchmarks report its recall against exact search.

The fast (approximate) paths run in numpy on views of the store's tensors (:meth:`RetrievalIndex.search_np`):
they are a handful of small-array operations per query, where numpy's per-call overhead is several
times lower than torch's. Candidates are re-ranked unit by unit on contiguous slices of the key
matrix, so nothing is gathered or copied.

Indexes read the store only through :class:`~hippogym.memory.views.StoreView` (public members of
``MemoryStore``); this module does not import the store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import MissingDependencyError, ValidationError
from hippogym.memory.rows import dot_rows
from hippogym.memory.views import StoreView

__all__ = ["RetrievalIndex", "TorchIndex", "FaissIndex"]

logger = logging.getLogger(__name__)


class RetrievalIndex:
    """Interface of a unit index.

    The store calls ``add``/``remove`` as units come and go, ``rebuild`` after keys are refreshed,
    and ``search`` to retrieve. Every method is handed the store as a :class:`StoreView`, the
    public members an index may read.
    """

    name = "base"

    def add(self, store: StoreView, slots: Sequence[int]) -> None:
        """Units ``slots`` were inserted (their centroids are set)."""

    def remove(self, store: StoreView, slots: Sequence[int]) -> None:
        """Units ``slots`` were evicted."""

    def rebuild(self, store: StoreView) -> None:
        """Keys (hence centroids) changed wholesale."""

    def on_rows(self, store: StoreView, start: int, length: int) -> None:
        """Rows ``[start, start + length)`` now hold new keys (an insert, a retained unit's move).

        Called before :meth:`add` for an insert. Unit-level indexes ignore it.
        """

    def on_rekey(self, store: StoreView, rows: np.ndarray) -> None:
        """The keys of ``rows`` (int64 array) were rewritten by a key refresh."""

    def on_units_rekeyed(self, store: StoreView, slots: Sequence[int]) -> None:
        """The keys (hence centroids) of units ``slots`` changed, the others' did not.

        A partial key refresh calls this instead of :meth:`rebuild`; the default re-files those
        units (``remove`` then ``add``).
        """
        self.remove(store, slots)
        self.add(store, slots)

    def search(self, store: StoreView, queries: Tensor, k: int, exact: bool | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(scores, slots)``, each ``[Q, k]``, best first.

        ``exact=True`` asks for exact MaxSim, ``False`` allows the fast approximate path, ``None``
        is the index's own default.
        """
        raise NotImplementedError

    def search_np(
        self, store: StoreView, queries: np.ndarray, k: int, exact: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` on numpy arrays (``queries`` ``[Q, d]`` float32, C-contiguous).

        The default delegates to :meth:`search`; built-in indexes override it with numpy paths.
        """
        scores, slots = self.search(store, torch.from_numpy(queries), k, exact)
        return scores.numpy(), slots.numpy()

    def config(self) -> dict[str, Any]:
        """JSON description."""
        return {"type": self.name}


def _bounds(store: StoreView, queries: Tensor) -> Tensor:
    n = store.num_slots
    cos = queries @ store.centroid[:n].T  # [Q, S]
    gap = torch.acos(cos.clamp_(-1.0, 1.0)) - store.theta[:n]
    bound = torch.cos(gap.clamp_(min=0.0))
    bound[:, ~store.unit_alive[:n]] = -math.inf
    return bound


def _maxsim_np(store: StoreView, query: np.ndarray, slots: list[int]) -> list[float]:
    """Exact MaxSim of one query against units ``slots`` (numpy, one BLAS call per unit, no copy)."""
    starts = store.unit_starts_np.take(slots).tolist()
    lengths = store.unit_lengths_np.take(slots).tolist()
    keys = store.keys_np
    width = max(lengths)
    scores = np.empty((len(slots), width), dtype=np.float32)
    for j, (s, n) in enumerate(zip(starts, lengths)):
        block = keys[s : s + n]
        dot_rows(block, query, scores[j, :n])
        if n < width:
            scores[j, n:] = -np.inf
    return scores.max(1).tolist()


def _rerank_np(store: StoreView, queries: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim over candidate units ``cand`` ``[Q, C]`` (``-1`` = none); top ``k`` of them."""
    n_q = queries.shape[0]
    out_s = np.full((n_q, k), -np.inf, dtype=np.float32)
    out_i = np.full((n_q, k), -1, dtype=np.int64)
    for qi in range(n_q):
        c = [s for s in cand[qi].tolist() if s >= 0]
        if not c:
            continue
        scores = _maxsim_np(store, queries[qi], c)
        # Best first; ties keep candidate order (a stable sort).
        top = sorted(range(len(c)), key=scores.__getitem__, reverse=True)[:k]
        out_s[qi, : len(top)] = [scores[j] for j in top]
        out_i[qi, : len(top)] = [c[j] for j in top]
    return out_s, out_i


def _merge(best_s: Tensor, best_i: Tensor, s: Tensor, i: Tensor, k: int) -> tuple[Tensor, Tensor]:
    all_s = torch.cat([best_s, s])
    all_i = torch.cat([best_i, i])
    top = torch.topk(all_s, min(k, all_s.numel()))
    return top.values, all_i[top.indices]


class TorchIndex(RetrievalIndex):
    """Exact MaxSim retrieval with centroid-radius pruning (see the module docstring).

    With ``exact=False`` (what hybrid sampling uses) it scores centroids only and re-ranks the best
    ``candidates`` units by exact MaxSim: a fixed cost per query, approximate.

    Args:
        first_round: Units evaluated exactly before the first pruning check, as a multiple of
            ``k`` (at least 8).
        chunk: Units evaluated per later round.
        candidates: Units re-ranked per query on the approximate path (at least ``k``).
    """

    name = "torch"

    def __init__(self, first_round: int = 4, chunk: int = 64, candidates: int = 10) -> None:
        self.first_round, self.chunk, self.candidates = int(first_round), int(chunk), int(candidates)
        self.last_opened = 0  # units whose transitions were scored by the last query (diagnostics)

    def search(self, store: StoreView, queries: Tensor, k: int, exact: bool | None = None) -> tuple[Tensor, Tensor]:  # noqa: D102
        if exact is False:
            q = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
            s, i = self._fast_np(store, q, k)
            return torch.from_numpy(s), torch.from_numpy(i)
        return self._exact(store, queries, k)

    def search_np(  # noqa: D102
        self, store: StoreView, queries: np.ndarray, k: int, exact: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if exact is False:
            return self._fast_np(store, queries, k)
        s, i = self._exact(store, torch.from_numpy(queries), k)
        return s.numpy(), i.numpy()

    def _fast_np(self, store: StoreView, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Centroid scan, top ``candidates`` units, exact MaxSim re-rank of those."""
        n = store.num_slots
        n_cand = min(max(self.candidates, k), store.num_units)
        cent = store.centroids_np[:n]
        if queries.shape[0] == 1:
            cos = (cent @ queries[0])[None]
        else:
            cos = np.ascontiguousarray((cent @ queries.T).T)
        cos += store.dead_mask_np[:n]  # free slots score -inf
        if n_cand < n:
            cand = torch.topk(torch.from_numpy(cos), n_cand, dim=1, sorted=False).indices.numpy()
        else:
            cand = np.argsort(-cos, axis=1, kind="stable")[:, :n_cand]
        self.last_opened = cand.size
        return _rerank_np(store, queries, cand, k)

    def _exact(self, store: StoreView, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        bounds = _bounds(store, queries)
        out_s = torch.full((queries.shape[0], k), -math.inf)
        out_i = torch.full((queries.shape[0], k), -1, dtype=torch.int64)
        opened = 0
        for qi in range(queries.shape[0]):
            q, bound = queries[qi], bounds[qi]
            n_first = min(max(self.first_round * k, 8), store.num_units)
            cand = torch.topk(bound, n_first).indices
            best_s, best_i = torch.topk(store.maxsim(q, cand), k)
            best_i = cand[best_i]
            done = torch.zeros(bound.shape[0], dtype=torch.bool)
            done[cand] = True
            opened += cand.numel()
            while True:
                open_mask = (bound > best_s[-1]) & ~done
                n_open = int(open_mask.sum())
                if n_open == 0:
                    break
                masked = torch.where(open_mask, bound, torch.tensor(-math.inf))
                cand = torch.topk(masked, min(self.chunk, n_open)).indices
                done[cand] = True
                opened += cand.numel()
                best_s, best_i = _merge(best_s, best_i, store.maxsim(q, cand), cand, k)
            out_s[qi], out_i[qi] = best_s, best_i
        self.last_opened = opened
        return out_s, out_i

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"type": self.name, "first_round": self.first_round, "chunk": self.chunk, "candidates": self.candidates}


def _import_faiss():
    try:
        import faiss  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("faiss-cpu", "faiss", "The FAISS retrieval index") from exc
    return faiss


class FaissIndex(RetrievalIndex):
    """FAISS over unit centroids, maintained incrementally, with exact MaxSim re-ranking.

    Args:
        kind: ``"flat"`` (exact inner product over centroids) or ``"ivf"`` (inverted lists:
            sub-linear, approximate). IVF is trained once ``train_after`` units are present and
            retrained on :meth:`rebuild`; before that a flat index serves.
        candidates: Units re-ranked by exact MaxSim per query (at least ``k``). ``exact=True``
            searches fall back to :class:`TorchIndex`'s exact algorithm.
        nlist: IVF lists (default ``4 * sqrt(units)`` at training time).
        nprobe: IVF lists visited per query.
        train_after: Units needed before the IVF index is trained.
        use_gpu: ``"auto"`` moves a flat index to the GPU when FAISS was built with GPU support
            and a GPU is visible; ``False`` never does.
    """

    name = "faiss"

    def __init__(
        self,
        kind: str = "ivf",
        candidates: int = 10,
        nlist: int | None = None,
        nprobe: int = 8,
        train_after: int = 2048,
        use_gpu: str | bool = "auto",
    ) -> None:
        if kind not in ("flat", "ivf"):
            raise ValidationError("kind", "'flat' or 'ivf'", repr(kind))
        self.kind, self.candidates, self.nlist, self.nprobe = kind, int(candidates), nlist, int(nprobe)
        self.train_after, self.use_gpu = int(train_after), use_gpu
        self._index = None
        self._exact = TorchIndex()
        self._trained_ivf = False
        self._gpu = False

    # -- construction
    def _flat(self, dim: int):
        faiss = _import_faiss()
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if self.use_gpu == "auto" and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            try:
                self._res = faiss.StandardGpuResources()
                index = faiss.index_cpu_to_gpu(self._res, 0, index)
                self._gpu = True
            except Exception as exc:  # pragma: no cover - depends on the FAISS build
                logger.warning("FAISS GPU index unavailable (%s); using the CPU index.", exc)
        return index

    def _ivf(self, dim: int, train: np.ndarray):
        faiss = _import_faiss()
        nlist = self.nlist or max(8, int(4 * math.sqrt(train.shape[0])))
        nlist = min(nlist, max(1, train.shape[0] // 39))  # FAISS wants ~39 points per list
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.nprobe = min(self.nprobe, nlist)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._quantizer = quantizer  # the IVF index does not own it: keep it alive
        return index

    def _vectors(self, store: StoreView, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(slots, dtype=np.int64)
        return np.ascontiguousarray(store.centroids_np[ids], dtype=np.float32), ids

    def rebuild(self, store: StoreView) -> None:  # noqa: D102
        slots = store.live_slots().numpy()
        vecs, ids = self._vectors(store, slots)
        self._trained_ivf = self.kind == "ivf" and len(ids) >= self.train_after
        self._index = self._ivf(store.embed_dim, vecs) if self._trained_ivf else self._flat(store.embed_dim)
        if len(ids):
            self._index.add_with_ids(vecs, ids)

    def add(self, store: StoreView, slots: Sequence[int]) -> None:  # noqa: D102
        if self._index is None:
            self._index = self._flat(store.embed_dim)
        vecs, ids = self._vectors(store, slots)
        self._index.add_with_ids(vecs, ids)
        if self.kind == "ivf" and not self._trained_ivf and store.num_units >= self.train_after:
            self.rebuild(store)

    def remove(self, store: StoreView, slots: Sequence[int]) -> None:  # noqa: D102
        if self._index is not None:
            self._index.remove_ids(np.asarray(slots, dtype=np.int64))

    def search(self, store: StoreView, queries: Tensor, k: int, exact: bool | None = None) -> tuple[Tensor, Tensor]:  # noqa: D102
        if exact:
            return self._exact.search(store, queries, k, exact=True)
        s, i = self._fast_np(store, np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32), k)
        return torch.from_numpy(s), torch.from_numpy(i)

    def search_np(  # noqa: D102
        self, store: StoreView, queries: np.ndarray, k: int, exact: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if exact:
            s, i = self._exact.search(store, torch.from_numpy(queries), k, exact=True)
            return s.numpy(), i.numpy()
        return self._fast_np(store, queries, k)

    def _fast_np(self, store: StoreView, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            self.rebuild(store)
        n_cand = min(max(self.candidates, k), store.num_units)
        _, cand = self._index.search(queries, n_cand)
        return _rerank_np(store, queries, cand, k)

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {
            "type": self.name, "kind": self.kind, "candidates": self.candidates, "nlist": self.nlist,
            "nprobe": self.nprobe, "train_after": self.train_after, "use_gpu": self.use_gpu,
        }
