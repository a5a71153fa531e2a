"""The core's gradients against independent float64 oracles (torch autograd, NumPy)."""

import numpy as np
import pytest

from uec import _core

torch = pytest.importorskip("torch")

A, B = 1.577, 0.8951  # UMAP's a, b for min_dist=0.1, spread=1


def _kl_oracle(Z, M, a, b, p, exact):
    """KL(T||S) in float64 torch, differentiated by autograd.

    exact=True: the full derivative through T and the column sums F (plus).
    exact=False: T treated as a constant (light plus and comma).
    r**b at r = 0 is written so that its derivative is the limit 0, not NaN.
    """
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    m = torch.tensor(M, dtype=torch.float64, requires_grad=True)
    r = ((z[:, None, :] - m[None, :, :]) ** 2).sum(-1)
    pos = r > 0
    rb = torch.where(pos, torch.where(pos, r, torch.ones_like(r)) ** b, torch.zeros_like(r))
    S = 1.0 / (1.0 + a * rb)
    F = S.sum(0)
    N = S**p / F
    T = N / N.sum(1, keepdim=True)
    if not exact:
        T = T.detach()
    kl = (T * (torch.log(T) - torch.log(S))).sum()
    kl.backward()
    return z.grad.numpy(), m.grad.numpy()


def _random_case(rng, n=60, d=2, C=4):
    Z = rng.normal(scale=3.0, size=(n, d)).astype(np.float32)
    M = rng.normal(scale=3.0, size=(C, d)).astype(np.float32)
    Z[0] = M[1]  # a point exactly on a centre
    Z[1] = M[2] + 1e-3  # a point very close to one
    Z[2] = np.float32(400.0)  # far from every centre
    Z[3] = np.float32(-900.0)
    return np.ascontiguousarray(Z), np.ascontiguousarray(M)


def _close(ours, ref, rtol=1e-5):
    scale = np.abs(ref).max()
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("mode,exact", [(_core.MODE_PLUS, True), (_core.MODE_LIGHT_PLUS, False), (_core.MODE_COMMA, False)])
def test_cluster_gradient_matches_autograd(p, d, mode, exact):
    rng = np.random.default_rng(int(p * 10) + d + mode)
    Z, M = _random_case(rng, d=d)
    gz, gm = _core.cluster_gradients(Z, M, A, B, p, mode)
    rz, rm = _kl_oracle(Z, M, A, B, p, exact)
    assert np.isfinite(gz).all() and np.isfinite(gm).all()
    _close(gz, rz)
    _close(gm, rm)


@pytest.mark.parametrize("b", [0.6, 1.0, 1.9])
def test_plus_gradient_other_curves(b):
    rng = np.random.default_rng(7)
    Z, M = _random_case(rng, n=40, d=3, C=6)
    gz, gm = _core.cluster_gradients(Z, M, 0.9, b, 2.0, _core.MODE_PLUS)
    rz, rm = _kl_oracle(Z, M, 0.9, b, 2.0, True)
    _close(gz, rz)
    _close(gm, rm)


def test_plus_differs_from_light_plus():
    # The exact gradient through T is not the constant-T gradient (the published code's was).
    rng = np.random.default_rng(3)
    Z, M = _random_case(rng)
    gz_plus, _ = _core.cluster_gradients(Z, M, A, B, 2.0, _core.MODE_PLUS)
    gz_light, _ = _core.cluster_gradients(Z, M, A, B, 2.0, _core.MODE_LIGHT_PLUS)
    assert np.abs(gz_plus - gz_light).max() > 1e-3 * np.abs(gz_light).max()


def test_point_on_centre_and_underflow_are_finite():
    Z = np.array([[0.0, 0.0], [1e15, -1e15], [-3e18, 2e18], [1.0, 1.0]], dtype=np.float32)
    M = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    for mode in (_core.MODE_COMMA, _core.MODE_LIGHT_PLUS, _core.MODE_PLUS):
        gz, gm = _core.cluster_gradients(Z, M, A, B, 2.0, mode)
        assert np.isfinite(gz).all() and np.isfinite(gm).all()
    ls, lt, S, T = _core.soft_assign(Z, M, A, B, 2.0, matrices=True)
    assert np.isfinite(S).all() and np.isfinite(T).all()
    np.testing.assert_allclose(T.sum(1), 1.0, rtol=1e-12)
    assert ls[0] == 0 and ls[3] == 1


def test_soft_assign_matches_numpy():
    rng = np.random.default_rng(11)
    Z, M = _random_case(rng, n=80, d=3, C=5)
    ls, lt, S, T = _core.soft_assign(Z, M, A, B, 2.0, matrices=True)
    r = ((Z.astype(np.float64)[:, None] - M.astype(np.float64)[None]) ** 2).sum(-1)
    S_ref = 1.0 / (1.0 + A * r**B)
    N = S_ref**2 / S_ref.sum(0)
    T_ref = N / N.sum(1, keepdims=True)
    np.testing.assert_allclose(S, S_ref, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(T, T_ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(ls, S_ref.argmax(1))
    np.testing.assert_array_equal(lt, T_ref.argmax(1))


def test_stats_match_numpy():
    rng = np.random.default_rng(5)
    Z, M = _random_case(rng, n=3000, d=2, C=7)  # several blocks
    F, c = _core.cluster_stats(Z, M, A, B, 2.0, True, n_jobs=2)
    r = ((Z.astype(np.float64)[:, None] - M.astype(np.float64)[None]) ** 2).sum(-1)
    S = 1.0 / (1.0 + A * r**B)
    N = S**2 / S.sum(0)
    T = N / N.sum(1, keepdims=True)
    g = 1.0 + np.log(T) - np.log(S)
    gbar = (T * g).sum(1, keepdims=True)
    c_ref = ((g - gbar) * T).sum(0)
    np.testing.assert_allclose(F, S.sum(0), rtol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=1e-9, atol=1e-9 * np.abs(c_ref).max())


def _umap_steps(x, y, a, b, gamma):
    """UMAP's per-sample updates, written out in float64 NumPy."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    r = ((x - y) ** 2).sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        att = np.where(r > 0, -2 * a * b * r ** (b - 1) / (1 + a * r**b), 0.0)
        rep = np.where(r > 0, 2 * gamma * b / ((0.001 + r) * (1 + a * r**b)), 0.0)
    return np.clip(att * (x - y), -4, 4), np.clip(rep * (x - y), -4, 4)


def test_ce_steps_match_umap_formulas():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)).astype(np.float32) * rng.choice([1e-3, 0.1, 1, 10], size=(500, 1)).astype(np.float32)
    y = rng.normal(size=(500, 3)).astype(np.float32) * 0.1
    y[:5] = x[:5]  # coincident pairs: zero step
    att, rep = _core.ce_steps(x, y, A, B, 1.0, 0)
    ratt, rrep = _umap_steps(x, y, A, B, 1.0)
    np.testing.assert_allclose(att, ratt, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(rep, rrep, rtol=2e-5, atol=1e-6)
    assert (att[:5] == 0).all() and (rep[:5] == 0).all()
    # scaled clipping: CE clipped to [-4, 4], then divided by 4
    att_s, rep_s = _core.ce_steps(x, y, A, B, 1.0, 1)
    np.testing.assert_allclose(att_s, ratt / 4, rtol=2e-5, atol=1e-6)


def test_ce_steps_are_negative_gradients_of_the_cross_entropy():
    # Attractive step = -d(-log q)/dx; repulsive step = -d(-log(1-q))/dx with UMAP's eps in r.
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(200, 2)) * 2).astype(np.float32)
    y = (rng.normal(size=(200, 2)) * 2).astype(np.float32)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y, dtype=torch.float64)
    r = ((xt - yt) ** 2).sum(1)
    q = 1.0 / (1.0 + A * r**B)
    (-torch.log(q)).sum().backward()
    g_att = -xt.grad.numpy()
    att, rep = _core.ce_steps(x, y, A, B, 1.0, 0)
    mask = (np.abs(g_att) < 4).all(1)
    np.testing.assert_allclose(att[mask], g_att[mask], rtol=1e-5, atol=1e-6)
    xt.grad = None
    r = ((xt - yt) ** 2).sum(1)
    q = 1.0 / (1.0 + A * r**B)
    (-torch.log(1.0 - q)).sum().backward()
    g_rep = -xt.grad.numpy()
    rr = ((x.astype(np.float64) - y) ** 2).sum(1)
    mask = (np.abs(g_rep) < 4).all(1) & (rr > 1.0)
    # UMAP adds eps = 0.001 to r in the repulsive term: agreement to ~eps / r.
    np.testing.assert_allclose(rep[mask], g_rep[mask], rtol=2e-3, atol=1e-6)
