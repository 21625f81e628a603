"""Every extra brings what its commands import: the import closure of each command, checked.

For each extra a small script runs the extra's entry points for real in a fresh interpreter and
reports every top-level module it ended up importing. Each module must come from the standard
library, from hippogym itself, or from a distribution in the requirement closure of the core
dependencies plus that extra (requirements of requirements, markers and extras evaluated). A
module from anywhere else is tolerated only when the command still succeeds with that module
blocked (an optional import of a dependency, such as tqdm's of colorama); otherwise
`pip install "hippogym[extra]"` would leave the command broken, as Pillow once did for
`hippogym convert`.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

#: The commands of each extra (run in a subprocess from the repository root).
SCRIPTS = {
    "core": """
        import torch
        from hippogym import Episode, HippocampalReplayBuffer, RecordEpisodes
        import gymnasium as gym, tempfile
        buffer = HippocampalReplayBuffer(seed=0)
        env = RecordEpisodes(gym.make("hippogym/SparseCorridor-v0"), buffer)
        env.reset(seed=0)
        for _ in range(40):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        env.close()
        buffer.sample(8)
        path = tempfile.mkdtemp() + "/m"
        buffer.save(path)
        HippocampalReplayBuffer.load(path)
        from hippogym import cli  # the CLI's own imports
    """,
    "sb3": """
        import gymnasium as gym
        from stable_baselines3 import DQN
        from hippogym.integrations.sb3 import HippoReplayBuffer, HippoCallback
        model = DQN("MlpPolicy", gym.make("CartPole-v1"), replay_buffer_class=HippoReplayBuffer,
                    learning_starts=16, batch_size=8, buffer_size=500, seed=0)
        model.learn(64)
    """,
    "minari": """
        import os, tempfile
        os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp()
        import gymnasium as gym
        import minari
        from minari.data_collector.episode_buffer import EpisodeBuffer
        import hippogym
        env = gym.make("hippogym/SparseCorridor-v0", length=4)
        obs, _ = env.reset(seed=0)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(1)
            observations.append(obs); actions.append(1); rewards.append(reward)
            terms.append(terminated); truncs.append(truncated)
            done = terminated or truncated
        minari.create_dataset_from_buffers(
            "closure/corridor-v0", [EpisodeBuffer(id=0, observations=observations, actions=actions, rewards=rewards,
                                                   terminations=terms, truncations=truncs, infos={})],
            env=env, algorithm_name="right", data_format="arrow")
        from hippogym.integrations.minari import memory_from_minari
        buffer = memory_from_minari("closure/corridor-v0")
        assert len(buffer) == len(actions)
    """,
    "hub": """
        import huggingface_hub
        from hippogym.integrations import hub
        hub.memory_card
    """,
    "faiss": """
        import torch
        from hippogym import Episode, MemoryStore
        store = MemoryStore(embed_dim=8, capacity=200, index="faiss")
        for _ in range(4):
            ep = Episode(observations=torch.randn(11, 3), actions=torch.zeros(10), rewards=torch.zeros(10))
            store.add(ep, torch.nn.functional.normalize(torch.randn(10, 8), dim=1))
        store.search(torch.nn.functional.normalize(torch.randn(2, 8), dim=1), 2)
    """,
    "viz": """
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from torch.utils.tensorboard import SummaryWriter
        import tempfile
        SummaryWriter(tempfile.mkdtemp()).close()
        plt.figure()
    """,
}

REPORT = """
import json, sys
print("\\nMODULES " + json.dumps(sorted({m.partition(".")[0] for m in sys.modules})))
"""


def _distributions_of(module: str, index: dict[str, list[str]]) -> set[str]:
    return {canonicalize_name(d) for d in index.get(module, [])}


def _closure(requirements: list[str]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` pull in, transitively."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            envs = [{"extra": e} for e in req.extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append(sub)
    return {k.partition("[")[0] for k in seen}


def _modules_used(script: str) -> list[str]:
    code = textwrap.dedent(script) + REPORT
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("MODULES ")][-1]
    return json.loads(line[len("MODULES "):])


def _runs_without(script: str, module: str) -> bool:
    """Whether ``script`` still succeeds when ``module`` cannot be imported (an optional import)."""
    code = f"import sys\nsys.modules[{module!r}] = None\n" + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=300).returncode == 0


@pytest.mark.parametrize("extra", list(SCRIPTS))
def test_the_extra_brings_every_module_its_commands_import(extra):
    requirements = list(PROJECT["dependencies"])
    if extra != "core":
        requirements += PROJECT["optional-dependencies"][extra]
        for req in PROJECT["optional-dependencies"][extra]:
            try:
                metadata.distribution(Requirement(req).name)
            except metadata.PackageNotFoundError:
                pytest.skip(f"{req} is not installed")
    allowed = _closure(requirements)
    index = metadata.packages_distributions()
    # What the declared packages import by themselves (their own optional imports, e.g. torch
    # picks up certifi when it is installed) is theirs, not a need of hippogym's commands.
    declared = {canonicalize_name(Requirement(r).name) for r in requirements}
    tops = sorted(m for m, ds in index.items() if {canonicalize_name(d) for d in ds} & declared
                  and m.isidentifier() and not m.startswith("_"))
    baseline = set(_modules_used("\n".join(f"try:\n    import {m}\nexcept Exception:\n    pass" for m in tops)))
    missing = {}
    for module in _modules_used(SCRIPTS[extra]):
        if module in sys.stdlib_module_names or module in ("hippogym", "hippo_format", "__main__") or module in baseline:
            continue
        dists = _distributions_of(module, index)
        if dists and not dists & allowed and not _runs_without(SCRIPTS[extra], module):
            missing[module] = sorted(dists)  # outside the closure, and the command fails without it
    assert not missing, f"hippogym[{extra}] runs code from distributions it does not bring: {missing}"


def test_the_closure_follows_requirements_of_requirements_and_their_extras():
    closure = _closure(["minari[hdf5]>=0.5"])
    assert {"minari", "h5py", "numpy"} <= closure
    assert "h5py" not in _closure(["minari>=0.5"])
