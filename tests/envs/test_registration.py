"""Registration with Gymnasium: on ``import hippogym``, cheaply, in every form Gymnasium users expect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium

from hippogym.envs import ENV_IDS, register_envs

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter (this tree first on the path); it prints one JSON line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_hippogym_registers_without_importing_torch_or_env_code():
    out = _fresh(
        "import json, sys, gymnasium as gym\n"
        "before = [i for i in gym.registry if i.startswith('hippogym/')]\n"
        "import hippogym\n"
        "after = sorted(i for i in gym.registry if i.startswith('hippogym/'))\n"
        "mods = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'hippogym.envs.c')))\n"
        "print(json.dumps({'before': before, 'after': after, 'mods': mods}))"
    )
    assert out == {"before": [], "after": sorted(ENV_IDS), "mods": []}


def test_gymnasium_forms_work_after_import_hippogym():
    out = _fresh(
        "import json, gymnasium as gym, hippogym\n"
        "gym.register_envs(hippogym)\n"
        f"names = [type(gym.make(i).unwrapped).__name__ for i in {list(ENV_IDS)!r}]\n"
        "print(json.dumps(names))"
    )
    assert out == [entry.split(":")[1] for entry in ENV_IDS.values()]


def test_module_prefixed_id_imports_hippogym_itself():
    out = _fresh(
        "import json, gymnasium as gym\n"
        "env = gym.make('hippogym:hippogym/CueRecall-v0')\n"
        "print(json.dumps(type(env.unwrapped).__name__))"
    )
    assert out == "CueRecallCorridorEnv"


def test_register_envs_is_idempotent_and_entry_points_resolve():
    assert register_envs() == []  # import hippogym did it
    for env_id, entry_point in ENV_IDS.items():
        assert gymnasium.registry[env_id].entry_point == entry_point
        module, name = entry_point.split(":")
        assert getattr(__import__(module, fromlist=[name]), name).__name__ == name
    gymnasium.registry.pop("hippogym/CueRecall-v0")
    try:
        assert register_envs() == ["hippogym/CueRecall-v0"]
    finally:
        register_envs()
