"""Row samplers: the extension point for how a batch's rows are drawn.

:class:`Sampler` (in :mod:`~hippogym.memory.samplers.base`) is the contract: rows and their exact
probabilities, priority feedback, ``state_dict``. :class:`UniformSampler` draws uniformly over live
rows; :class:`PrioritizedSampler` draws proportionally to TD-error priorities over a sum tree.
Semantic sampling (:class:`SemanticSampler`) draws rows of the units retrieved for
already-embedded query keys; the replay buffer embeds the query and mixes its draws in.
"""

from hippogym.memory.samplers.base import SampledStore, Sampler
from hippogym.memory.samplers.prioritized import PrioritizedSampler
from hippogym.memory.samplers.semantic import SemanticSampler
from hippogym.memory.samplers.uniform import UniformSampler

__all__ = ["PrioritizedSampler", "SampledStore", "Sampler", "SemanticSampler", "UniformSampler"]
