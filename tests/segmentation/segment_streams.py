"""Shared helpers of the segmentation tests: feed synthetic episodes, read step indices back."""

from __future__ import annotations

import numpy as np

from hippogym import Episode


def run(seg, lengths, stream=0, rewards=None, ends=None, infos=None):
    """Feed episodes of the given lengths; obs = [episode, step]. Returns the emitted segments."""
    out = []
    for e, length in enumerate(lengths):
        for t in range(length):
            last = t == length - 1
            end = (ends or {}).get(e, "terminated")
            r = rewards[e][t] if rewards else float(t)
            info = infos(e, t, last) if infos else None
            out += seg.add(
                np.array([e, t], np.float32),
                t % 3,
                r,
                last and end == "terminated",
                last and end == "truncated",
                np.array([e, t + 1], np.float32),
                info,
                stream=stream,
            )
    return out


def steps_of(ep: Episode):
    return ep.states[:, 1].long().tolist()


def steps_of_flat(ep: Episode):
    return ep.states[:, 0].long().tolist()
