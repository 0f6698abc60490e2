"""Kernel maths of the synthetic degradations (Real-ESRGAN's families and the sinc filter)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import j1

from datakit.degrade import kernels as K


def moments(k: np.ndarray) -> np.ndarray:
    """Covariance of a kernel's mass in (x = column, y = row) coordinates."""
    x, y = K.grid(k.shape[0])
    m = np.array([[np.sum(k * x * x), np.sum(k * x * y)], [np.sum(k * x * y), np.sum(k * y * y)]])
    return m


@pytest.mark.parametrize("family", K.ALL_FAMILIES)
@pytest.mark.parametrize("size", [7, 13, 21])
def test_every_family_is_normalised_and_centrally_symmetric(family, size):
    rng = np.random.default_rng(size)
    for _ in range(5):
        k = K.make(family, size, sigma_x=rng.uniform(0.2, 3), sigma_y=rng.uniform(0.2, 3),
                   theta=rng.uniform(-np.pi, np.pi), beta=rng.uniform(0.5, 4), omega=rng.uniform(np.pi / 5, np.pi))
        assert k.shape == (size, size)
        assert np.isfinite(k).all()
        assert k.sum() == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)  # correlation == convolution
        if family != "sinc":
            assert (k >= 0).all()
            assert k[size // 2, size // 2] == k.max()


def test_isotropic_gaussian_is_the_formula_and_rotation_invariant():
    k = K.make("iso", 21, sigma_x=2.0, sigma_y=0.5, theta=1.0)  # iso ignores sigma_y and theta
    x, y = K.grid(21)
    ref = np.exp(-(x ** 2 + y ** 2) / (2 * 2.0 ** 2))
    np.testing.assert_allclose(k, ref / ref.sum(), rtol=1e-12)
    np.testing.assert_allclose(k, k.T, atol=1e-15)
    np.testing.assert_allclose(k, np.rot90(k), atol=1e-15)


def test_anisotropic_gaussian_has_the_covariance_it_was_built_with():
    for theta in (0.0, 0.3, np.pi / 4, 2.0, -1.2):
        k = K.gaussian(21, 2.0, 0.8, theta)
        np.testing.assert_allclose(moments(k), K.covariance(2.0, 0.8, theta), atol=2e-3)
        # the long axis points along theta
        w, v = np.linalg.eigh(moments(k))
        major = v[:, np.argmax(w)]
        assert abs(abs(np.dot(major, [np.cos(theta), np.sin(theta)])) - 1) < 1e-3


def test_rotation_behaves_as_defined():
    k0 = K.gaussian(15, 2.5, 0.7, 0.0)
    # sigma_x > sigma_y at theta 0: spread along x (columns), not y (rows)
    m = moments(k0)
    assert m[0, 0] > 5 * m[1, 1]
    np.testing.assert_allclose(K.gaussian(15, 2.5, 0.7, np.pi / 2), k0.T, atol=1e-12)
    np.testing.assert_allclose(K.gaussian(15, 2.5, 0.7, np.pi), k0, atol=1e-12)
    np.testing.assert_allclose(K.gaussian(15, 0.7, 2.5, 0.0), k0.T, atol=1e-12)  # swapping sigmas = 90 degrees
    d = K.gaussian(15, 2.5, 0.7, np.pi / 4)
    np.testing.assert_allclose(d, d.T, atol=1e-12)  # long axis on the diagonal
    assert d[0, 0] > d[0, -1]
    # anisotropy: not invariant under a quarter turn
    assert np.abs(k0 - np.rot90(k0)).max() > 1e-3


def test_generalized_and_plateau_shapes():
    x, y = K.grid(21)
    np.testing.assert_allclose(K.generalized_gaussian(21, 1.5, 1.5, 0.0, 1.0), K.gaussian(21, 1.5), atol=1e-12)
    peaky = K.generalized_gaussian(21, 1.5, 1.5, 0.0, 0.5)
    flat = K.generalized_gaussian(21, 1.5, 1.5, 0.0, 4.0)
    gauss = K.gaussian(21, 1.5)
    # beta < 1: heavier tails than the Gaussian; beta > 1: lighter tails and a flat top
    assert peaky[10, 16] / peaky[10, 10] > gauss[10, 16] / gauss[10, 10] > flat[10, 16] / flat[10, 10]
    assert flat[10, 11] / flat[10, 10] > 0.97 > gauss[10, 11] / gauss[10, 10]
    # plateau: k(p) / k(0) = 1 / (q^beta + 1), q = |p|^2 / sigma^2 for the isotropic case
    sigma, beta = 2.0, 1.5
    p = K.plateau(21, sigma, sigma, 0.0, beta)
    q = (x ** 2 + y ** 2) / sigma ** 2
    np.testing.assert_allclose(p / p[10, 10], 1 / (q ** beta + 1), rtol=1e-10)
    # anisotropic plateau: elongated along the rotated axis as well
    pa = K.plateau(21, 3.0, 1.0, np.pi / 2, beta)
    assert pa[0, 10] > pa[10, 0]  # long axis along rows (y) after a quarter turn


def test_sinc_values_and_cut_off():
    omega = np.pi / 2
    k = K.sinc(21, omega)
    # the centre is omega^2 / (4 pi), a neighbour omega J1(omega) / (2 pi), before normalisation
    assert k[10, 11] / k[10, 10] == pytest.approx(2 * j1(omega) / omega, rel=1e-10)
    assert (k < 0).any()  # ringing lobes
    # spectrum: ~1 well inside the disc |f| < omega, ~0 well outside
    n = 256
    spec = np.abs(np.fft.fft2(k, s=(n, n)))
    f = 2 * np.pi * np.fft.fftfreq(n)
    r = np.hypot(*np.meshgrid(f, f))
    assert np.mean(spec[r < 0.6 * omega]) == pytest.approx(1.0, abs=0.06)
    assert np.mean(spec[(r > 1.4 * omega) & (r < np.pi)]) < 0.05
    # a lower cut-off keeps less of the spectrum
    low = np.abs(np.fft.fft2(K.sinc(21, np.pi / 5), s=(n, n)))
    assert np.mean(low[(r > 0.4 * np.pi) & (r < np.pi)]) < np.mean(spec[(r > 0.4 * np.pi) & (r < np.pi)])
    with pytest.raises(ValueError):
        K.sinc(21, 4.0)


def test_batched_kernels_match_one_by_one():
    sx, sy, th, b = np.array([0.5, 1.0, 2.5]), np.array([1.5, 0.3, 2.0]), np.array([0.0, 1.0, -2.0]), np.array([0.6, 1.0, 3.0])
    for fam in K.FAMILIES:
        stack = K.make(fam, 13, sx, sy, th, b)
        assert stack.shape == (3, 13, 13)
        for i in range(3):
            np.testing.assert_allclose(stack[i], K.make(fam, 13, sx[i], sy[i], th[i], b[i]), atol=1e-14)
    om = np.array([0.5, 1.5, 3.0])
    stack = K.make("sinc", 9, omega=om)
    for i in range(3):
        np.testing.assert_allclose(stack[i], K.sinc(9, om[i]), atol=1e-14)


def test_bad_kernel_arguments():
    with pytest.raises(ValueError, match="odd"):
        K.grid(8)
    with pytest.raises(ValueError, match="unknown kernel family"):
        K.make("box", 7, 1.0)
    with pytest.raises(ValueError, match="positive"):
        K.gaussian(7, 0.0)
