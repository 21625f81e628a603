"""The row-storage helpers (hippogym.memory.rows)."""

import numpy as np
import torch

from hippogym.memory.rows import as_torch, host_array, numpy_view, take_rows, write_range


def test_numpy_view_shares_memory_and_none_for_bfloat16():
    t = torch.zeros(4, 2)
    v = numpy_view(t)
    v[1, 0] = 3.0
    assert t[1, 0].item() == 3.0
    assert numpy_view(None) is None
    assert numpy_view(torch.zeros(3, dtype=torch.bfloat16)) is None


def test_host_array_handles_grad_tensors():
    x = torch.ones(3, requires_grad=True)
    np.testing.assert_array_equal(host_array(x), np.ones(3, dtype=np.float32))
    assert host_array(torch.zeros(2, dtype=torch.bfloat16)) is None


def test_write_range_through_view_and_fallback():
    t = torch.zeros(5, 2)
    write_range(t, numpy_view(t), 1, 3, torch.ones(2, 2))
    assert t.sum().item() == 4.0 and t[1:3].eq(1).all()
    b = torch.zeros(4, dtype=torch.bfloat16)
    write_range(b, numpy_view(b), 0, 2, torch.full((2,), 2.0, dtype=torch.bfloat16))
    assert b.tolist() == [2.0, 2.0, 0.0, 0.0]
    f = torch.zeros(3)  # dtype mismatch with the view: torch path casts
    write_range(f, numpy_view(f), 0, 3, torch.arange(3, dtype=torch.int64))
    assert f.tolist() == [0.0, 1.0, 2.0]


def test_take_rows_numpy_and_torch_paths():
    t = torch.arange(10.0).reshape(5, 2)
    rows = np.array([4, 0, 4], dtype=np.int64)
    out = take_rows(t, numpy_view(t), rows)
    assert isinstance(out, np.ndarray) and out[:, 0].tolist() == [8.0, 0.0, 8.0]
    out_t = take_rows(t, None, rows)
    assert isinstance(out_t, torch.Tensor) and out_t[:, 1].tolist() == [9.0, 1.0, 9.0]


def test_as_torch_wraps_without_copy():
    a = np.arange(3)
    t = as_torch(a)
    a[0] = 7
    assert t[0].item() == 7
    x = torch.ones(2)
    assert as_torch(x) is x
