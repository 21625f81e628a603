"""The row-storage helpers (hippogym.memory.rows)."""

import numpy as np
import torch

from hippogym.memory.rows import (
    as_torch,
    dot_rows,
    float32_rows,
    grown,
    host_array,
    keys_as_float32,
    new_rows,
    numpy_view,
    take_rows,
    write_range,
)


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


def test_16_bit_keys_are_read_as_float32_unit_vectors_and_scanned_in_blocks():
    g = torch.Generator().manual_seed(0)
    exact = torch.nn.functional.normalize(torch.randn(5_000, 16, generator=g), dim=1)
    half = exact.half()
    unit = torch.nn.functional.normalize(half.float(), dim=1)
    assert torch.equal(keys_as_float32(exact), exact)  # float32: as it is
    assert torch.allclose(keys_as_float32(half), unit) and keys_as_float32(half).dtype == torch.float32
    np.testing.assert_allclose(float32_rows(half.numpy()), unit.numpy(), rtol=1e-6)  # torch's conversion
    np.testing.assert_allclose(float32_rows(half[:10].numpy()), unit[:10].numpy(), rtol=1e-6)  # numpy's (small)
    assert float32_rows(exact.numpy()) is not None and float32_rows(exact.numpy()).dtype == np.float32
    queries = exact[:3].numpy()
    one = np.empty(5_000, np.float32)
    dot_rows(half.numpy(), queries[0], one)  # more rows than one conversion block
    np.testing.assert_allclose(one, (unit @ exact[0]).numpy(), atol=1e-6)
    many = np.empty((5_000, 3), np.float32)
    dot_rows(half.numpy(), np.ascontiguousarray(queries.T), many)
    np.testing.assert_allclose(many, (unit @ exact[:3].T).numpy(), atol=1e-6)
    # The key a query was made from scores 1 up to float32 rounding, above every other key.
    assert np.abs(many[np.arange(3), np.arange(3)] - 1.0).max() < 1e-5 and (many.argmax(0) == np.arange(3)).all()


def test_new_rows_fills_shares_memory_with_numpy_and_falls_back_for_bfloat16():
    for dtype in (torch.float32, torch.float16, torch.int64, torch.bool, torch.int8):
        t = new_rows((5, 3), dtype)
        assert t.dtype == dtype and t.shape == (5, 3) and not t.any()
        view = t.numpy()
        view[1, 2] = 1
        assert bool(t[1, 2])  # the tensor and its numpy array are one buffer
    assert torch.equal(new_rows((4,), torch.int64, -1), torch.full((4,), -1))
    assert new_rows((3,), torch.float32, None).shape == (3,)  # uninitialised, only the shape is defined
    b = new_rows((2, 2), torch.bfloat16, 1.5)  # numpy has no bfloat16: torch's allocator
    assert b.dtype == torch.bfloat16 and torch.equal(b, torch.full((2, 2), 1.5, dtype=torch.bfloat16))


def test_grown_keeps_rows_and_zeroes_the_new_ones():
    t = torch.arange(6, dtype=torch.float16).reshape(3, 2) + 1
    g = grown(t, 5)
    assert g.dtype == t.dtype and torch.equal(g[:3], t) and not g[3:].any()
