"""Memory: row storage, eviction, retrieval indexes and samplers."""

from hippogym.memory.eviction import EvictionPolicy, FIFOEviction, UtilityEviction, make_eviction
from hippogym.memory.index import FaissIndex, RetrievalIndex, TorchIndex
from hippogym.memory.indexes import make_index
from hippogym.memory.samplers import PrioritizedSampler, Sampler, UniformSampler
from hippogym.memory.store import MemoryStore
from hippogym.memory.sumtree import SumTree
from hippogym.memory.transition_index import TransitionIndex
from hippogym.memory.views import StoreView, UnitTable

__all__ = [
    "EvictionPolicy", "FIFOEviction", "FaissIndex", "MemoryStore", "PrioritizedSampler",
    "RetrievalIndex", "Sampler", "StoreView", "SumTree", "TorchIndex", "TransitionIndex", "UniformSampler",
    "UnitTable", "UtilityEviction",
    "make_eviction", "make_index",
]
