"""summarize / format_summary."""

from __future__ import annotations

import json

import pytest

from hippo_format import format_summary, open_memory, summarize

from .memgen import write_small_memory


def test_summary_of_a_good_memory(tmp_path):
    path = write_small_memory(tmp_path / "mem", image=True)
    summary = summarize(path)
    json.dumps(summary)  # JSON-compatible
    assert summary["counts"] == {"transitions": 23, "episodes": 4}
    assert summary["checksums_ok"] is True and summary["verify_error"] is None
    assert summary["episodes"]["success_known"] == 2
    assert summary["episodes"]["success_rate"] == pytest.approx(0.5)
    assert summary["episodes"]["length"] == {"min": 5.0, "mean": 5.75, "max": 7.0}
    assert summary["columns"]["obs.image"] == {"dtype": "uint8", "shape": [3, 8, 8]}
    assert summary["tensors"]["keys"]["embeddings"] == {"dtype": "F32", "shape": [23, 4]}
    assert summary["total_bytes"] == sum(summary["files"].values())
    text = format_summary(summary)
    for needle in ("transitions   23", "episodes      4", "50.0% of 2", "embed_dim     4", "observation_space Box(float32, shape=[3])",
                   "encoder", "\"architecture\": \"mlp\"", "checksums     OK", "keys.safetensors"):
        assert needle in text, needle


def test_summary_reports_corruption(tmp_path):
    path = write_small_memory(tmp_path / "mem")
    data = bytearray((path / "keys.safetensors").read_bytes())
    data[-1] ^= 1
    (path / "keys.safetensors").write_bytes(bytes(data))
    summary = summarize(open_memory(path))
    assert summary["checksums_ok"] is False
    assert "ChecksumMismatchError" in summary["verify_error"]
    assert "FAILED: ChecksumMismatchError" in format_summary(summary)
    assert summarize(path, verify=False)["checksums_ok"] is None
