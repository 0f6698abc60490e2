"""Blur kernels of the Real-ESRGAN degradation model, from the published formulas.

Every kernel is a ``size x size`` array (``size`` odd) on the integer grid centred
on 0, normalised to sum to 1. ``x`` is the column offset, ``y`` the row offset.

* Gaussian families use the covariance ``S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``
  and the quadratic form ``q(p) = p^T S^-1 p``:

  - ``iso`` / ``aniso``:                          ``exp(-q / 2)``
  - ``generalized_iso`` / ``generalized_aniso``:  ``exp(-q^beta / 2)``   (beta: "betag")
  - ``plateau_iso`` / ``plateau_aniso``:          ``1 / (q^beta + 1)``    (beta: "betap")

  The ``*_iso`` families have ``sigma_y = sigma_x`` and ``theta = 0``.
* ``sinc`` is the circular (ideal) low-pass filter of cut-off ``omega`` (radians per
  sample): ``omega * J1(omega r) / (2 pi r)`` with the limit ``omega^2 / (4 pi)`` at
  ``r = 0``. Its continuous spectrum is 1 inside the disc ``|f| < omega``, 0 outside.

The functions are vectorised: pass arrays of parameters (one entry per frame) to get
a ``(n, size, size)`` stack; scalars give one ``(size, size)`` kernel.
"""
from __future__ import annotations

import numpy as np
from scipy.special import j1

#: The six Gaussian-like families, in the order of Real-ESRGAN's ``kernel_list``.
FAMILIES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
#: Every family a blur step can draw.
ALL_FAMILIES = FAMILIES + ("sinc",)


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` offsets of a ``size x size`` kernel's taps from its centre (``size`` odd)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    x, y = np.meshgrid(ax, ax)  # x varies along columns, y along rows
    return x, y


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """The 2x2 covariance ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``."""
    c, s = np.cos(theta), np.sin(theta)
    r = np.array([[c, -s], [s, c]])
    return r @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ r.T


def _batch(*values):
    arrs = np.broadcast_arrays(*[np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values])
    scalar = all(np.ndim(v) == 0 for v in values)
    return arrs, scalar


def _quadratic(size: int, sigma_x, sigma_y, theta):
    """``q = p^T S^-1 p`` on the grid, shape ``(n, size, size)``; S^-1 in closed form."""
    (sx, sy, th), scalar = _batch(sigma_x, sigma_y, theta)
    if np.any(sx <= 0) or np.any(sy <= 0):
        raise ValueError("sigma_x and sigma_y must be positive")
    x, y = grid(size)
    c, s = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
    ix, iy = (1.0 / sx ** 2)[:, None, None], (1.0 / sy ** 2)[:, None, None]
    a = c * c * ix + s * s * iy
    b = c * s * (ix - iy)
    d = s * s * ix + c * c * iy
    return a * x * x + 2 * b * x * y + d * y * y, scalar


def _finish(k: np.ndarray, scalar: bool) -> np.ndarray:
    k = k / k.sum(axis=(-2, -1), keepdims=True)
    return k[0] if scalar else k


def gaussian(size: int, sigma_x, sigma_y=None, theta=0.0) -> np.ndarray:
    """Normalised (an)isotropic Gaussian; ``sigma_y`` defaults to ``sigma_x``."""
    q, scalar = _quadratic(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _finish(np.exp(-0.5 * q), scalar)


def generalized_gaussian(size: int, sigma_x, sigma_y, theta, beta) -> np.ndarray:
    """Normalised generalized Gaussian ``exp(-q^beta / 2)``: beta < 1 peaky, beta > 1 flat-topped."""
    q, scalar = _quadratic(size, sigma_x, sigma_y, theta)
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))[:, None, None]
    return _finish(np.exp(-0.5 * np.power(q, beta)), scalar)


def plateau(size: int, sigma_x, sigma_y, theta, beta) -> np.ndarray:
    """Normalised plateau kernel ``1 / (q^beta + 1)`` (heavy-tailed, flat near the centre)."""
    q, scalar = _quadratic(size, sigma_x, sigma_y, theta)
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))[:, None, None]
    return _finish(1.0 / (np.power(q, beta) + 1.0), scalar)


def sinc(size: int, omega) -> np.ndarray:
    """Normalised circular low-pass kernel with cut-off ``omega`` in (0, pi]."""
    (om,), scalar = _batch(omega)
    if np.any(om <= 0) or np.any(om > np.pi + 1e-9):
        raise ValueError("omega must be in (0, pi]")
    x, y = grid(size)
    r = np.hypot(x, y)[None]
    om = om[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = om * j1(om * r) / (2 * np.pi * r)
    k = np.where(r == 0, om ** 2 / (4 * np.pi), k)
    return _finish(k, scalar)


def make(family: str, size: int, sigma_x=None, sigma_y=None, theta=None, beta=None, omega=None) -> np.ndarray:
    """One kernel (scalar parameters) or a stack (per-frame arrays) of the named family.

    ``*_iso`` families ignore ``sigma_y`` and ``theta``; plain Gaussians ignore ``beta``;
    ``sinc`` uses ``omega`` only.
    """
    if family == "sinc":
        return sinc(size, omega)
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; allowed: {', '.join(ALL_FAMILIES)}")
    if family.endswith("_iso") or family == "iso":
        sigma_y, theta = sigma_x, np.zeros_like(np.asarray(sigma_x, dtype=np.float64))
    if family in ("iso", "aniso"):
        return gaussian(size, sigma_x, sigma_y, theta)
    if family.startswith("generalized"):
        return generalized_gaussian(size, sigma_x, sigma_y, theta, beta)
    return plateau(size, sigma_x, sigma_y, theta, beta)
