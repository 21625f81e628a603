"""The model card of a pushed memory: YAML metadata the Hub and ``datasets`` read, and a short body."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import hippo_format
from hippogym.errors import ValidationError, describe
from hippogym.hubio.common import EPISODES_FILE, LIBRARY_NAME, TRANSITIONS_FILE, check_repo_type, import_hub

__all__ = ["memory_card"]


def _fmt(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _encoder_summary(encoder: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(encoder, Mapping):
        return None
    raw = encoder.get("backbone")
    backbone: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    summary = {
        "backbone": backbone.get("type"),
        "input_dim": encoder.get("input_dim"),
        "embed_dim": encoder.get("embed_dim"),
        "hidden": backbone.get("hidden"),
        "momentum": encoder.get("momentum"),
    }
    return {k: v for k, v in summary.items() if v is not None}


def _data_configs(files: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The card's ``configs:`` block: ``datasets.load_dataset(repo)`` reads the transitions table.

    ``datasets`` picks its Arrow builder from the ``.arrow`` extension (it reads IPC files as
    well as IPC streams); the first config (``default``) is what ``load_dataset(repo)`` loads,
    ``load_dataset(repo, "episodes")`` reads the per-episode table.
    """
    configs = []
    for name, table in (("default", TRANSITIONS_FILE), ("episodes", EPISODES_FILE)):
        if table in files:
            configs.append({"config_name": name, "data_files": [{"split": "train", "path": table}]})
    return configs


def memory_card(
    memory: str | os.PathLike[str] | Mapping[str, Any],
    *,
    repo_id: str | None = None,
    repo_type: str = "model",
    license: str | None = None,
) -> str:
    """Write the card (``README.md``) of a memory: YAML metadata, a summary and how to load it.

    The metadata holds ``library_name: hippogym``, ``license``, ``pipeline_tag:
    reinforcement-learning`` (``task_categories`` in a dataset card), tags
    (``reinforcement-learning``, ``episodic-memory``, ``hippogym``, the environment id and
    ``minari`` for offline data), a ``configs:`` block naming the Arrow tables so that
    ``datasets.load_dataset(repo)`` reads the transitions (``load_dataset(repo, "episodes")``
    the episodes), and a ``hippogym`` section: format version, environment and source dataset
    (from the manifest's ``provenance``), counts, return min/mean/max, success rate, key width,
    encoder summary and total size.

    Args:
        memory: A memory directory, or the dict :func:`hippo_format.summarize` returns for one.
        repo_id: Repository the card is written for (used in the loading snippet).
        repo_type: ``"model"`` (a model card) or ``"dataset"`` (a dataset card).
        license: License identifier of the data (a Hub license id such as ``"cc-by-4.0"``); default:
            the manifest's ``provenance["license"]``, else ``"unknown"``.

    Returns:
        The card text (YAML front matter, then Markdown).
    """
    hf = import_hub("Writing a memory card")
    check_repo_type(repo_type)
    summary = dict(memory) if isinstance(memory, Mapping) else hippo_format.summarize(memory, verify=False)
    provenance = summary.get("provenance") or {}
    env_id = provenance.get("env_id")
    dataset_id = provenance.get("dataset_id")
    counts = summary.get("counts") or {}
    episodes = summary.get("episodes") or {}
    returns = episodes.get("return")
    encoder = _encoder_summary(summary.get("encoder"))
    producer = summary.get("producer") or {}

    tags = ["reinforcement-learning", "episodic-memory", LIBRARY_NAME]
    if env_id:
        tags.append(str(env_id))
    if dataset_id:
        tags.append("minari")
    section: dict[str, Any] = {
        "format": hippo_format.FORMAT_NAME,
        "format_version": summary.get("format_version"),
        "env_id": env_id,
        "dataset_id": dataset_id,
        "transitions": counts.get("transitions"),
        "episodes": counts.get("episodes"),
        "return": returns,
        "success_rate": episodes.get("success_rate"),
        "embed_dim": summary.get("embed_dim"),
        "encoder": encoder,
        "total_bytes": summary.get("total_bytes"),
        "producer": f"{producer.get('name')} {producer.get('version')}" if producer else None,
    }
    section = {k: v for k, v in section.items() if v is not None}
    license = license or provenance.get("license") or "unknown"
    if not isinstance(license, str) or not license.strip() or any(c.isspace() for c in license):
        raise ValidationError("license", "a Hub license identifier such as 'cc-by-4.0' or 'mit'", describe(license))
    configs = _data_configs(summary.get("files") or {})
    if repo_type == "dataset":
        data: Any = hf.DatasetCardData(
            license=license,
            task_categories=["reinforcement-learning"],
            pretty_name=f"hippogym memory of {env_id}" if env_id else "hippogym memory",
            tags=tags,
            library_name=LIBRARY_NAME,
            configs=configs,
            **{LIBRARY_NAME: section},
        )
    else:
        data = hf.ModelCardData(
            library_name=LIBRARY_NAME,
            license=license,
            pipeline_tag="reinforcement-learning",
            tags=tags,
            configs=configs,
            **{LIBRARY_NAME: section},
        )

    name = repo_id or "NAMESPACE/NAME"
    rate = episodes.get("success_rate")
    rows = [
        ("environment", f"`{env_id}`" if env_id else "unknown"),
        ("source dataset", f"`{dataset_id}` (Minari)" if dataset_id else "none (recorded online)"),
        ("transitions", f"{counts.get('transitions', 0):,}"),
        ("episodes", f"{counts.get('episodes', 0):,}"),
        (
            "return (min / mean / max)",
            " / ".join(_fmt(returns.get(k)) for k in ("min", "mean", "max")) if returns else "n/a",
        ),
        (
            "success rate",
            "unknown"
            if rate is None
            else f"{rate:.1%} of {episodes.get('success_known', 0)} episodes with a known outcome",
        ),
        ("keys", f"{summary.get('embed_dim')}-d" if summary.get("embed_dim") is not None else "none"),
        ("encoder", ", ".join(f"{k} {v}" for k, v in encoder.items()) if encoder else "none saved"),
        (
            "format",
            (
                f"{hippo_format.FORMAT_NAME} v{summary.get('format_version')}, "
                f"{len(summary.get('files') or {})} files, {(summary.get('total_bytes') or 0) / 2**20:.1f} MiB"
            ),
        ),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    type_arg = "" if repo_type == "model" else f', repo_type="{repo_type}"'
    type_flag = "" if repo_type == "model" else f" --repo-type {repo_type}"
    body = f"""
# hippogym memory{f" for {env_id}" if env_id else ""}

An episodic memory saved by [hippogym](https://github.com/hippogym/hippogym): the transitions,
their grouping into episodes, learned retrieval keys and the encoder that made them, in the
`{hippo_format.FORMAT_NAME}` format (Arrow tables + safetensors + `manifest.json`, which records the
SHA-256 and size of every file).

| | |
|---|---|
{table}

## How to load it

```python
from hippogym.integrations.hub import load_memory_from_hub

buffer = load_memory_from_hub("{name}"{type_arg})   # checks every file's SHA-256 before use
batch = buffer.sample(256)
```

Pin a version with `revision=` (a branch, tag or commit id). The transitions are a plain Arrow
table: in a dataset repository, `datasets.load_dataset("{name}")` reads them
(`load_dataset("{name}", "episodes")` reads one row per episode). To keep learning online with
Stable-Baselines3, pass it as `replay_buffer_kwargs=dict(buffer=buffer)` of
`hippogym.integrations.sb3.HippoReplayBuffer`. From the shell:

```bash
hippogym pull {name} ./memory{type_flag}
```
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"
