"""The ``hippogym`` command line and the demo behind ``hippogym demo``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hippogym import HippocampalReplayBuffer
from hippogym.cli import CommandError, main
from hippogym.demo import format_demo, run_demo

SUBCOMMANDS = ["demo", "inspect", "convert", "push", "pull"]
TOKEN = "cli-token"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def saved_memory(tmp_path_factory) -> Path:
    """A small saved memory (random vector episodes)."""
    from hippogym import Episode

    g = torch.Generator().manual_seed(0)
    buffer = HippocampalReplayBuffer(capacity=500, embed_dim=8, seed=0)
    for i in range(6):
        buffer.add_episode(Episode(states=torch.randn(11, 3, generator=g), actions=torch.randn(10, 1, generator=g),
                                   rewards=torch.randn(10, generator=g), terminated=torch.arange(10) == 9,
                                   episode_id=i, success=i % 2 == 0))
    return Path(buffer.save(tmp_path_factory.mktemp("cli") / "memory"))


@pytest.fixture
def corridor_dataset(tmp_path, monkeypatch) -> str:
    """A local Minari dataset recorded on SparseCorridor (scripted, noisy policy)."""
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    import hippogym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    hippogym.register_envs()
    env = gym.make("hippogym/SparseCorridor-v0", length=6)
    rng = np.random.default_rng(0)
    episodes = []
    for i in range(5):
        obs, _ = env.reset(seed=i)
        data: dict[str, list] = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        done = False
        while not done:
            action = int(rng.random() < 0.8)
            obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(data, (obs, action, reward, terminated, truncated)):
                data[key].append(value)
            done = terminated or truncated
        episodes.append(EpisodeBuffer(id=i, **data))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers("corridor/cli-v0", episodes, env=env, algorithm_name="scripted")
    return "corridor/cli-v0"


# --------------------------------------------------------------------------- help and usage


@pytest.mark.parametrize("command", [[], *[[c] for c in SUBCOMMANDS]], ids=lambda c: c[0] if c else "top")
def test_help_exits_zero(command, capsys):
    code, out, _ = _run(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: hippogym")
    if not command:
        assert all(c in out for c in SUBCOMMANDS)


def test_entry_points():
    proc = subprocess.run([sys.executable, "-m", "hippogym", "--version"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("hippogym ")
    script = shutil.which("hippogym")
    if script is not None:  # the console script of the editable install
        proc = subprocess.run([script, "inspect", "--help"], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0 and "usage: hippogym inspect" in proc.stdout


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["convert", "corridor/x-v0", "out", "--segmenter", "window:x"],
        ["convert", "corridor/x-v0", "out", "--segmenter", "tree"],
        ["convert", "not-an-id", "out"],
        ["convert", "corridor/x-v0"],
        ["demo", "--steps", "0"],
        ["demo", "--steps", "many"],
        ["inspect"],
        ["push", "path-only"],
    ],
    ids=lambda a: "-".join(a) or "none",
)
def test_usage_errors_exit_2(argv, capsys):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "error:" in err and "Traceback" not in err


# --------------------------------------------------------------------------- runtime errors


def test_runtime_errors_exit_1(tmp_path, capsys, monkeypatch):
    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    code, _, err = _run(capsys, "inspect", str(tmp_path / "missing"))
    assert code == 1 and err.startswith("error:") and "no such file" in err
    code, _, err = _run(capsys, "convert", "nowhere/unknown-v0", str(tmp_path / "out"))
    assert code == 1 and "nowhere/unknown-v0" in err and "--download" in err and "Traceback" not in err
    code, _, err = _run(capsys, "push", str(tmp_path / "missing"), "alice/memory")
    assert code == 1 and "no such file" in err
    code, _, err = _run(capsys, "pull", str(tmp_path / "missing"), str(tmp_path / "out"))
    assert code == 1 and err.startswith("error:")
    with pytest.raises(CommandError):  # --debug: the exception propagates (traceback)
        main(["--debug", "inspect", str(tmp_path / "missing")])


def test_inspect_prints_summary_and_fails_cleanly_on_corruption(saved_memory, tmp_path, capsys):
    code, out, _ = _run(capsys, "inspect", str(saved_memory))
    assert code == 0 and "size          60 transitions in 6 units" in out and "checksums     OK" in out
    code, out, _ = _run(capsys, "inspect", str(saved_memory), "--json", "--no-verify")
    assert code == 0 and json.loads(out)["counts"]["episodes"] == 6
    broken = tmp_path / "broken"
    shutil.copytree(saved_memory, broken)
    table = broken / "transitions.arrow"
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes: only the checksum can tell
    table.write_bytes(bytes(data))
    code, _, err = _run(capsys, "inspect", str(broken))
    assert code == 1 and "error:" in err and "Traceback" not in err
    (broken / "manifest.json").write_text("{")
    code, _, err = _run(capsys, "inspect", str(broken))
    assert code == 1 and err.startswith("error:") and "manifest" in err


def test_inspect_shows_what_a_user_needs_and_hides_optimizer_state(tmp_path, capsys):
    import gymnasium as gym

    from hippogym import RecordEpisodes

    buffer = HippocampalReplayBuffer(capacity=400, embed_dim=8, seed=0)
    env = RecordEpisodes(gym.make("hippogym/SparseCorridor-v0", length=5, obs_mode="scalar"), buffer)
    for seed in range(6):
        env.reset(seed=seed)
        done = False
        while not done:
            *_, terminated, truncated, _ = env.step(1)
            done = terminated or truncated
    buffer.consolidate(steps=2, batch_size=8)
    buffer.provenance["note"] = "x" * 300  # never truncated
    path = buffer.save(tmp_path / "m")
    code, out, err = _run(capsys, "inspect", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert f"size          {len(buffer)} transitions in {buffer.num_episodes} units" in out and buffer.num_episodes == 6
    assert "env           hippogym/SparseCorridor-v0" in lines
    space = env.observation_space
    assert f"  observation Box({space.low.item() + 0.0:g}, {space.high.item():g}, shape=(1,), float32)" in lines
    assert "  action      Discrete(2)" in lines
    assert "  note        " + "x" * 300 in lines
    assert "  capacity      400 transitions" in lines and "  consolidated  2 steps" in lines
    assert any(line.startswith("  key freshness 100.0%") for line in lines)
    # Every episode terminated: all returns-to-go complete, the best one gamma^0 * 1.
    assert any(line.startswith("  to go       min") and "max 1  (gamma 0.99; 100.0% of rows in terminated units"
               in line for line in lines)
    assert "optimizer" not in out.replace("optimizer and RNG-state tensors hidden", "")
    assert "hidden; --all lists them" in out
    code, full, _ = _run(capsys, "inspect", str(path), "--all", "--no-verify")
    assert code == 0 and "consolidator.optimizer.0.exp_avg" in full
    assert "online.net.0.weight" in full and "online.net.0.weight" not in out  # encoder layers: --all only
    assert "  checksums     not verified (--no-verify)" in full.splitlines()
    code, text, _ = _run(capsys, "inspect", str(path), "--json")
    doc = json.loads(text)
    assert doc["health"]["checksums"].startswith("OK") and doc["settings"]["capacity"] == "400 transitions"
    assert not [n for n in doc["tensors"]["state"] if "optimizer" in n]
    doc_all = json.loads(_run(capsys, "inspect", str(path), "--json", "--all")[1])
    assert [n for n in doc_all["tensors"]["state"] if "optimizer" in n]


# --------------------------------------------------------------------------- demo


def test_run_demo_summary(tmp_path):
    summary = run_demo(steps=600, out=tmp_path / "memory", seed=1, length=6, consolidate_steps=5, embed_dim=16)
    rec = summary["recorded"]
    assert rec["transitions"] == 600 and rec["episodes"] > 0 and 0 <= rec["success_rate"] <= 1
    cons = summary["consolidation"]
    assert set(cons["before"]) == set(cons["after"]) and "reward_alignment" in cons["after"]
    saved = summary["saved"]
    assert saved["same_keys"] and saved["same_next_batch"] and saved["reloaded_transitions"] == 600
    assert (tmp_path / "memory" / "manifest.json").is_file()
    for name, cell in (("start", 0), ("near_goal", 3)):
        result = summary["retrieval"][name]
        assert result["cell"] == cell and len(result["top"]) == 3 and result["matching_units"] >= 1
        for row in result["top"]:
            assert -1.0 - 1e-5 <= row["score"] <= 1.0 + 1e-5 and row["success"] in (True, False, None)
            assert isinstance(row["return"], float)
    text = format_demo(summary)
    assert "query 'near_goal'" in text and "bit-exact" in text
    json.dumps(summary)  # JSON-able
    by_cell = summary["retrieval_by_cell"]
    assert len(by_cell["before"]["retrieved"]) == len(by_cell["after"]["uniform"]) == 5  # cells 0..length-2
    assert summary["plot"] == str(tmp_path / "memory_demo.png") and (tmp_path / "memory_demo.png").stat().st_size > 0


def test_the_demo_shows_the_value_memory_speeding_up_learning(tmp_path):
    for seed in (0, 1):
        summary = run_demo(steps=4000, out=tmp_path / f"m{seed}", seed=seed, length=10, consolidate_steps=5,
                           embed_dim=16, plot=False)
        learn = summary["learning"]
        assert len(learn["td_value_error"]) == len(learn["episodic_greedy_success"]) == 41  # before + 40 updates
        assert learn["td_value_error"][0] == learn["episodic_value_error"][0]  # the same start
        # The stored returns make the greedy policy succeed, and the values converge, in fewer updates.
        assert learn["episodic_first_success"] < learn["td_first_success"]
        assert learn["episodic_first_within_0.05"] < learn["td_first_within_0.05"]
        assert learn["episodic_value_error"][10] < 0.5 * learn["td_value_error"][10]
        # Retrieval for the cell next to the goal surfaces successes far above the base rate.
        by_cell = summary["retrieval_by_cell"]["after"]
        assert by_cell["retrieved"][-1] > 1.5 * by_cell["uniform"][-1]
        assert summary["plot"] is None


def test_demo_command(tmp_path, capsys):
    code, out, _ = _run(capsys, "demo", "--steps", "300", "--length", "5", "--consolidate", "2", "--out",
                        str(tmp_path / "m"), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["saved"]["path"] == str(tmp_path / "m") and summary["retrieval"]["start"]["top"]
    code, out, _ = _run(capsys, "demo", "--steps", "200", "--consolidate", "0", "--out", str(tmp_path / "m2"),
                        "--no-plot", "--updates", "3")
    assert code == 0 and "what retrieval surfaces" in out and "consolidation skipped" in out
    assert "learning from the memory" in out and not (tmp_path / "m2_demo.png").exists()


# --------------------------------------------------------------------------- convert, push, pull


def test_convert_then_inspect(corridor_dataset, tmp_path, capsys):
    out_dir = tmp_path / "memory"
    code, out, err = _run(capsys, "convert", corridor_dataset, str(out_dir), "--segmenter", "window:4",
                          "--consolidate", "2", "--seed", "0", "--embed-dim", "16", "--no-progress")
    assert code == 0, err
    assert f"saved to {out_dir}" in out
    buffer = HippocampalReplayBuffer.load(out_dir)
    assert buffer.provenance["dataset_id"] == corridor_dataset and buffer.provenance["consolidate_steps"] == 2
    assert all(len(u) <= 4 for u in buffer.memory.episodes())
    code, out, _ = _run(capsys, "inspect", str(out_dir))
    assert code == 0 and corridor_dataset in out and "FixedWindowSegmenter" in out
    # Converting onto a directory that is not a memory fails cleanly.
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    code, _, err = _run(capsys, "convert", corridor_dataset, str(tmp_path / "occupied"), "--no-progress")
    assert code == 1 and "not a memory" in err and (tmp_path / "occupied" / "notes.txt").exists()
    code, _, err = _run(capsys, "demo", "--steps", "50", "--out", str(tmp_path / "occupied"))
    assert code == 1 and "not a memory" in err
    # Converting again onto the memory replaces it.
    code, _, err = _run(capsys, "convert", corridor_dataset, str(out_dir), "--no-progress", "--info-key", "nothing")
    assert code == 0, err
    assert not HippocampalReplayBuffer.load(out_dir).memory.infos


@pytest.fixture
def hub(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants
    from hubserver import LocalHubServer

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    for var in ("HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    with LocalHubServer(root=tmp_path / "hub", tokens={TOKEN: "alice"}) as server:
        yield server


def test_push_and_pull(saved_memory, hub, tmp_path, capsys):
    code, out, err = _run(capsys, "push", str(saved_memory), "alice/cli-memory", "--token", TOKEN,
                          "--endpoint", hub.endpoint, "-m", "first memory")
    assert code == 0, err
    assert "pushed" in out and "alice/cli-memory" in out
    pulled = tmp_path / "pulled"
    code, out, err = _run(capsys, "pull", "alice/cli-memory", str(pulled), "--token", TOKEN, "--endpoint", hub.endpoint)
    assert code == 0, err
    assert "60 transitions" in out
    a, b = HippocampalReplayBuffer.load(saved_memory), HippocampalReplayBuffer.load(pulled)
    assert torch.equal(a.memory.keys, b.memory.keys)
    code, _, err = _run(capsys, "pull", "alice/no-such-repo", str(tmp_path / "x"), "--token", TOKEN,
                        "--endpoint", hub.endpoint)
    assert code == 1 and err.startswith("error:") and "Traceback" not in err
    code, _, err = _run(capsys, "push", str(saved_memory), "alice/other", "--token", "wrong", "--endpoint", hub.endpoint)
    assert code == 1 and err.startswith("error:")
    assert os.listdir(tmp_path / "pulled")


def test_refused_pull_keeps_the_cache_for_an_offline_pull(saved_memory, hub, tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    assert _run(capsys, "push", str(saved_memory), "alice/cached", "--token", TOKEN, "--endpoint", hub.endpoint)[0] == 0
    hub_args = ("--token", TOKEN, "--endpoint", hub.endpoint)
    assert _run(capsys, "pull", "alice/cached", str(tmp_path / "a"), *hub_args)[0] == 0
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    code, _, err = _run(capsys, "pull", "alice/cached", str(junk), "--token", TOKEN, "--endpoint", hub.endpoint)
    assert code == 1 and "not a memory" in err and "corrupt" not in err
    assert os.listdir(junk) == ["notes.txt"]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, out, err = _run(capsys, "pull", "alice/cached", str(tmp_path / "b"), *hub_args)
    assert code == 0, err
    assert "60 transitions" in out


def test_push_and_pull_a_dataset_repo_with_a_license(saved_memory, hub, tmp_path, capsys):
    import huggingface_hub

    code, _, err = _run(capsys, "push", str(saved_memory), "alice/cli-data", "--token", TOKEN,
                        "--endpoint", hub.endpoint, "--repo-type", "dataset", "--license", "cc-by-4.0")
    assert code == 0, err
    card = huggingface_hub.DatasetCard.load(huggingface_hub.hf_hub_download(
        "alice/cli-data", "README.md", repo_type="dataset", endpoint=hub.endpoint, token=TOKEN,
        cache_dir=tmp_path / "c"))
    assert card.data.license == "cc-by-4.0"
    code, out, err = _run(capsys, "pull", "alice/cli-data", str(tmp_path / "p"), "--repo-type", "dataset", "--token",
                          TOKEN, "--endpoint", hub.endpoint)
    assert code == 0, err
    assert "60 transitions" in out


def test_http_request_logs_only_with_vv(saved_memory, hub, tmp_path, capsys):
    hub_args = ("--token", TOKEN, "--endpoint", hub.endpoint)
    code, _, err = _run(capsys, "push", str(saved_memory), "alice/logs", "-v", *hub_args)
    assert code == 0, err
    assert "pushed" in err and "HTTP Request" not in err  # hippogym's INFO, not the client's requests
    code, _, err = _run(capsys, "pull", "alice/logs", str(tmp_path / "p"), "-vv", *hub_args)
    assert code == 0, err
    assert "HTTP Request" in err and "placed alice/logs" in err
    code, _, err = _run(capsys, "pull", "alice/logs", str(tmp_path / "q"), *hub_args)
    assert code == 0 and "placed" not in err and "HTTP Request" not in err


def test_the_readme_quotes_the_default_demo_run(tmp_path):
    """README's figures of the demo are what the default run (seed 0) measures."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"greedily after (\d+) batches instead of (\d+), and its values are within\s+0\.05 of "
                       r"optimal after (\d+) instead of (\d+)", readme)
    assert quoted, "README no longer quotes the demo's figures"
    learn = run_demo(out=tmp_path / "m", plot=False)["learning"]
    measured = (learn["episodic_first_success"], learn["td_first_success"],
                learn["episodic_first_within_0.05"], learn["td_first_within_0.05"])
    assert tuple(int(g) for g in quoted.groups()) == measured
