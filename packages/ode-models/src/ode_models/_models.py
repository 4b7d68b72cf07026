"""The image classifiers of Chen et al. (2018), section 7.1.

Every model is a downsampling stem, a feature block at 1/4 resolution and a
pooled linear head; only the feature block differs: six or one residual
blocks, or one ODE block integrated over [0, 1] with ``ode_adjoint``
(adaptive ``dopri5`` and the adjoint method for the ODE-Net, fixed-step RK4
with backpropagation for the RK-Net). The layer layout follows the
paper's description and the authors' public MNIST example.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import ode_adjoint
import torch
from ode_adjoint import BackwardCounter
from ode_core import Stats
from ode_core.validation import check_method
from torch import nn

from ._augmented import AugmentedDynamics, Regularization, controlled_norm

__all__ = [
    "DATASETS",
    "MODELS",
    "Classifier",
    "ConcatConv2d",
    "ODEBlock",
    "ODEFunc",
    "ODEModel",
    "ResBlock",
    "build_model",
    "check_regularization",
]

MODELS = ("resnet6", "resnet1", "odenet", "odenet-notime", "rknet")
"""Model names :func:`build_model` accepts."""

DATASETS: Mapping[str, tuple[int, int, int]] = MappingProxyType({"mnist": (1, 28, 28), "cifar10": (3, 32, 32)})
"""Dataset names and their input shapes (C, H, W)."""

WIDTH = 64
N_CLASSES = 10
RKNET_STEP_SIZE = 0.25
"""Default step of fixed-step methods: 4 steps over [0, 1]."""


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels), channels)


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(relu(norm(conv(relu(norm(x)))))).

    Parameters
    ----------
    channels : int
        Input and output channels; 3 x 3 convolutions, stride 1.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm2 = _norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Parameters
        ----------
        x : Tensor, shape (B, C, H, W)

        Returns
        -------
        Tensor, shape (B, C, H, W)
            ``x`` plus the residual.
        """
        out = self.conv1(torch.relu(self.norm1(x)))
        out = self.conv2(torch.relu(self.norm2(out)))
        result: torch.Tensor = x + out
        return result


class ConcatConv2d(nn.Module):
    """3 x 3 convolution that sees the time as one more input channel.

    Parameters
    ----------
    in_channels, out_channels : int
    time : bool
        Whether to append the constant channel ``t``; without it this is a
        plain convolution (``odenet-notime``).
    """

    def __init__(self, in_channels: int, out_channels: int, *, time: bool = True) -> None:
        super().__init__()
        self.time = time
        self.conv = nn.Conv2d(in_channels + int(time), out_channels, 3, 1, 1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x``, with ``t`` as a constant extra channel when ``time``.

        Parameters
        ----------
        t : Tensor, shape ()
            The time.
        x : Tensor, shape (B, C_in, H, W)

        Returns
        -------
        Tensor, shape (B, C_out, H, W)
        """
        if self.time:
            x = torch.cat((t.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:]), x), dim=1)
        out: torch.Tensor = self.conv(x)
        return out


class ODEFunc(nn.Module):
    """The ODE-Net dynamics f(t, z): norm, ReLU, conv, norm, ReLU, conv, norm.

    Parameters
    ----------
    channels : int
    time : bool
        Whether the convolutions see ``t`` (:class:`ConcatConv2d`).
    """

    def __init__(self, channels: int, *, time: bool = True) -> None:
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = ConcatConv2d(channels, channels, time=time)
        self.norm2 = _norm(channels)
        self.conv2 = ConcatConv2d(channels, channels, time=time)
        self.norm3 = _norm(channels)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The dynamics ``dz/dt = f(t, z)``.

        Parameters
        ----------
        t : Tensor, shape ()
            The time.
        z : Tensor, shape (B, C, H, W)
            The state.

        Returns
        -------
        Tensor, shape (B, C, H, W)
            ``dz/dt``.
        """
        out = self.conv1(t, torch.relu(self.norm1(z)))
        out = self.conv2(t, torch.relu(self.norm2(out)))
        result: torch.Tensor = self.norm3(out)
        return result


class ODEBlock(nn.Module):
    """z(1) from z(0) = input and dz/dt = func(t, z), solved by ``ode_adjoint``.

    Parameters
    ----------
    func : nn.Module
        ``func(t, z)``, ``t`` a 0-d tensor.
    method : str
        Any ``ode_core`` method name.
    rtol, atol : float
        Tolerances of adaptive methods.
    gradient : {"backprop", "adjoint", "checkpoint"}
        How backward differentiates the solve.
    step_size : float, optional
        Fixed step; required-defaulted to 0.25 for fixed-step methods, and
        with an adaptive method it forces fixed steps too.
    seminorm : bool
        With ``gradient="adjoint"``, leave the parameter adjoints out of the
        backward solve's error control (Kidger, Chen & Lyons 2021): the same
        gradient to within tolerance, typically several times fewer backward
        evaluations. Off by default, as in the paper.

    Attributes
    ----------
    nfe_forward : int
        Function evaluations of the last forward solve.
    last_stats : ode_core.Stats or None
        The last forward solve's statistics.

    Notes
    -----
    The counters read the solver's statistics: ``nfe_backward`` is the
    adjoint solve's (or the checkpoint replay's) evaluations for the last
    forward, 0 until its backward has run and always 0 with
    ``gradient="backprop"`` (whose backward is autograd's through the
    recorded steps, with no new evaluations). ``total_nfe_forward`` and
    ``total_nfe_backward`` accumulate since :meth:`reset_nfe`.
    """

    _KEEP = 64  # solves whose backward may still come, kept to read it later

    def __init__(
        self,
        func: nn.Module,
        *,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-3,
        gradient: str = "adjoint",
        step_size: float | None = None,
        seminorm: bool = False,
        first_step: float | None = None,
        regularization: Regularization | None = None,
    ) -> None:
        super().__init__()
        tableau = check_method(method)  # ode-core's names and aliases, its message
        if gradient not in ode_adjoint.GRADIENTS:
            raise ValueError(f"gradient: expected one of {', '.join(ode_adjoint.GRADIENTS)}, got {gradient!r}")
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not value > 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if seminorm and gradient != "adjoint":
            raise ValueError(f"seminorm: applies to gradient='adjoint' only, got gradient={gradient!r}")
        if step_size is not None and not step_size > 0:
            raise ValueError(f"step_size: expected a positive number or None, got {step_size!r}")
        if step_size is None and not tableau.adaptive:
            step_size = RKNET_STEP_SIZE
        if first_step is not None and (not first_step > 0 or not tableau.adaptive or step_size is not None):
            raise ValueError(
                f"first_step: expected a positive number for an adaptive method without step_size, got {first_step!r}"
                f" (method {method!r}, step_size {step_size!r})"
            )
        self.first_step = first_step
        if regularization is not None and not isinstance(regularization, Regularization):
            raise TypeError(f"regularization: expected a Regularization or None, got {type(regularization).__name__}")
        self.regularization = Regularization() if regularization is None else regularization
        self.func = func
        self.method = method
        self.rtol = rtol
        self.atol = atol
        self.gradient = gradient
        self.step_size = step_size
        self.seminorm = seminorm
        self.nfe_forward = 0
        self.last_stats: Stats | None = None
        self._last_backward: BackwardCounter | None = None
        self._total_forward = 0
        self._total_backward = 0  # from solves no longer in _pending
        self._pending: list[BackwardCounter] = []
        self._regularization_loss: torch.Tensor | None = None
        self._regularizer_sums = dict.fromkeys(self.regularization.active, 0.0)
        self._regularized_solves = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Solve from ``z(0) = z`` to ``t = 1``.

        Updates ``nfe_forward`` (and, after ``backward()``,
        ``nfe_backward``).

        Parameters
        ----------
        z : Tensor, shape (B, C, H, W)
            The initial state.

        Returns
        -------
        Tensor, shape (B, C, H, W)
            The state at ``t = 1``.
        """
        return self.integrate(z)[0]

    def trajectory(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``z(t)`` from ``z0`` at ``times[..., 0]``: shared times (m,), or each sample's own (B, m).

        Own times run ode-adjoint's per-sample mode (``batch_dims=1``): each
        trajectory has its own steps; ``nfe_forward`` then counts the
        evaluations of ``func`` on the batch (the most any sample took).

        Parameters
        ----------
        z0 : Tensor, shape (B, d)
        times : Tensor, shape (m,) or (B, m)
            Increasing; ``z0`` is the state at the first.

        Returns
        -------
        Tensor, shape (B, m, d)
        """
        per_sample = times.dim() == 2
        parameters = tuple(self.func.parameters())
        solution = ode_adjoint.solve(
            self.func,
            z0,
            times,
            rtol=self.rtol,
            atol=self.atol,
            method=self.method,
            options=self._options() or None,
            gradient=self.gradient,
            adjoint_params=parameters,
            batch_dims=1 if per_sample else 0,
        )
        self._count(solution, z0, parameters, per_sample)
        ys: torch.Tensor = solution.ys
        return ys.transpose(0, 1)

    def _options(self) -> dict[str, object]:
        """The solver options the block's settings make (torchdiffeq's keys)."""
        options: dict[str, object] = {}
        if self.step_size is not None:
            options["step_size"] = self.step_size
        if self.first_step is not None:
            options["first_step"] = self.first_step
        return options

    def _count(
        self, solution: ode_adjoint.Solution, z: torch.Tensor, parameters: tuple[torch.Tensor, ...], per_sample: bool
    ) -> None:
        """Record a solve's statistics and keep its backward counter while its backward may come."""
        stats = solution.stats
        counts: Any = stats.nfev  # a tensor of per-sample counts in the per-sample mode
        nfev = int(counts.max()) if per_sample else int(counts)
        self.last_stats = stats
        self._last_backward = solution.backward_counter
        self.nfe_forward = nfev
        self._total_forward += nfev
        if torch.is_grad_enabled() and (z.requires_grad or any(p.requires_grad for p in parameters)):
            self._pending.append(solution.backward_counter)
            if len(self._pending) > self._KEEP:
                self._total_backward += self._pending.pop(0).nfev

    def integrate(
        self, z: torch.Tensor, *, times: tuple[float, float] = (0.0, 1.0), divergence: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Solve from ``z`` at ``times[0]`` to ``times[1]``, with the divergence's integral when asked.

        The one solve of the block: counters, regularisers (training solves)
        and the gradient engine apply to every caller.

        Parameters
        ----------
        z : Tensor, shape (B, ...)
            The state at ``times[0]``; samples independent along the first dimension.
        times : (float, float)
            Start and end (either order).
        divergence : {"exact", "hutchinson"}, optional
            Also integrate ``tr(dfunc/dz)`` (exactly or by Hutchinson's estimator):
            a flow's change of log-density. Its accuracy counts in the step
            control, the regularisers' does not.

        Returns
        -------
        z1 : Tensor, shaped like z
        divergence_integral : Tensor, shape (B,), or None
            The integral of ``tr(dfunc/dz)`` from ``times[0]`` to ``times[1]``.
        """
        options = self._options()
        parameters = tuple(self.func.parameters())
        regularizers = self.regularization.active if self.training and torch.is_grad_enabled() else ()
        func: object = self.func
        y0: torch.Tensor | tuple[torch.Tensor, ...] = z
        if regularizers or divergence is not None:
            dynamics = AugmentedDynamics(self.func, regularizers, divergence=divergence)
            dynamics.draw_noise(z)
            func, y0 = dynamics, dynamics.initial_state(z)
            options["norm"] = controlled_norm(1 if divergence is None else 2)
        solution = ode_adjoint.solve(
            func,  # type: ignore[arg-type]
            y0,
            list(times),
            rtol=self.rtol,
            atol=self.atol,
            method=self.method,
            options=options or None,
            gradient=self.gradient,
            adjoint_options={**options, "norm": "seminorm"} if self.seminorm else None,
            adjoint_params=parameters,
        )
        self._count(solution, z, parameters, per_sample=False)
        if func is self.func:
            ys: torch.Tensor = solution.ys
            return ys[-1], None
        final: list[torch.Tensor] = [component[-1] for component in solution.ys]
        integrals = final[1:]
        divergence_integral = integrals.pop(0) if divergence is not None else None
        if regularizers:
            loss = z.new_zeros(())
            for name, integral in zip(regularizers, integrals):
                value = integral.mean()
                loss = loss + self.regularization.weight(name) * value
                self._regularizer_sums[name] += float(value.detach())
            self._regularized_solves += 1
            previous = self._regularization_loss
            self._regularization_loss = loss if previous is None else previous + loss
        return final[0], divergence_integral

    def take_regularization_loss(self) -> torch.Tensor | None:
        """The weighted regularisers of the training solves since the last call, and forget them.

        Returns
        -------
        Tensor, shape (), or None
            ``sum_r weight_r * mean over the batch of r``, differentiable;
            ``None`` without regularisers or training solves.
        """
        loss, self._regularization_loss = self._regularization_loss, None
        return loss

    @property
    def regularizer_means(self) -> dict[str, float]:
        """Each active regulariser's mean value per training solve since :meth:`reset_nfe` (unweighted)."""
        count = max(self._regularized_solves, 1)
        return {name: total / count for name, total in self._regularizer_sums.items()}

    @property
    def nfe_backward(self) -> int:
        """Backward evaluations for the last forward solve (0 before its backward)."""
        return 0 if self._last_backward is None else self._last_backward.nfev

    @property
    def total_nfe_forward(self) -> int:
        """Forward evaluations since :meth:`reset_nfe`."""
        return self._total_forward

    @property
    def total_nfe_backward(self) -> int:
        """Backward evaluations since :meth:`reset_nfe` (of the solves whose backward has run)."""
        return self._total_backward + sum(counter.nfev for counter in self._pending)

    def reset_nfe(self) -> None:
        """Zero the counters (evaluations and the regularisers' sums)."""
        self.nfe_forward = 0
        self.last_stats = None
        self._last_backward = None
        self._total_forward = 0
        self._total_backward = 0
        self._pending.clear()
        self._regularizer_sums = dict.fromkeys(self.regularization.active, 0.0)
        self._regularized_solves = 0

    def extra_repr(self) -> str:
        step = f", step_size={self.step_size}" if self.step_size is not None else ""
        semi = ", seminorm=True" if self.seminorm else ""
        semi += f", first_step={self.first_step}" if self.first_step is not None else ""
        weights = "".join(f", {name}={self.regularization.weight(name)}" for name in self.regularization.active)
        return (
            f"method={self.method!r}, rtol={self.rtol}, atol={self.atol}, gradient={self.gradient!r}{step}{semi}"
            f"{weights}"
        )


class ODEModel(nn.Module):
    """A model with ODE blocks: their counters and regularisers, as the runner reads them.

    The classifiers, :class:`~ode_models.CNF` and the latent models share it.

    Parameters
    ----------
    *args, **kwargs
        Passed to ``nn.Module``.
    """

    def ode_blocks(self) -> list[ODEBlock]:
        """The model's ODE blocks.

        Returns
        -------
        list of ODEBlock
            In module order; empty for models without one (the ResNets).
        """
        return [m for m in self.modules() if isinstance(m, ODEBlock)]

    def reset_nfe(self) -> None:
        """Zero every ODE block's evaluation counters."""
        for block in self.ode_blocks():
            block.reset_nfe()

    def take_regularization_loss(self) -> torch.Tensor | None:
        """The ODE blocks' weighted regularisers since the last call (see :class:`ODEBlock`).

        Returns
        -------
        Tensor, shape (), or None
            Their sum; ``None`` where no block has one.
        """
        terms = [loss for block in self.ode_blocks() if (loss := block.take_regularization_loss()) is not None]
        if not terms:
            return None
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total


class Classifier(ODEModel):
    """stem -> feature block -> head, images (B, C, H, W) to logits (B, 10).

    Parameters
    ----------
    stem, features, head : nn.Module
    """

    def __init__(self, stem: nn.Module, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify a batch of images.

        Parameters
        ----------
        x : Tensor, shape (B, C, H, W)
            Normalised images.

        Returns
        -------
        Tensor, shape (B, 10)
            Logits.
        """
        logits: torch.Tensor = self.head(self.features(self.stem(x)))
        return logits


def _stem(in_channels: int) -> nn.Sequential:
    # 3x3 conv, then two stride-2 4x4 convs: 28 -> 26 -> 13 -> 6 (MNIST),
    # 32 -> 30 -> 15 -> 7 (CIFAR-10).
    return nn.Sequential(
        nn.Conv2d(in_channels, WIDTH, 3, 1),
        _norm(WIDTH),
        nn.ReLU(inplace=True),
        nn.Conv2d(WIDTH, WIDTH, 4, 2, 1),
        _norm(WIDTH),
        nn.ReLU(inplace=True),
        nn.Conv2d(WIDTH, WIDTH, 4, 2, 1),
    )


def _head() -> nn.Sequential:
    return nn.Sequential(
        _norm(WIDTH), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, N_CLASSES)
    )


def check_regularization(name: str, regularization: Regularization | None) -> None:
    """ValueError unless model ``name`` has an ODE block to regularise (or ``regularization`` is off)."""
    if name.startswith("resnet") and regularization is not None and regularization.active:
        raise ValueError(
            f"regularization: {', '.join(regularization.active)} regularise an ODE block; {name!r} has none "
            "(use odenet, odenet-notime or rknet)"
        )


def build_model(
    name: str,
    dataset: str,
    *,
    method: str | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    gradient: str | None = None,
    step_size: float | None = None,
    seminorm: bool = False,
    first_step: float | None = None,
    regularization: Regularization | None = None,
) -> Classifier:
    """One of the paper's classifiers, untrained.

    Parameters
    ----------
    name : {"resnet6", "resnet1", "odenet", "odenet-notime", "rknet"}
        ``resnet6``/``resnet1``: six/one residual blocks; ``odenet``: one ODE
        block with time-dependent dynamics; ``odenet-notime``: the same
        without the time channel; ``rknet``: the ODE-Net's dynamics
        integrated by a fixed-step method and backpropagated through.
    dataset : {"mnist", "cifar10"}
        Sets the input channels (1 or 3); inputs (B, 1, 28, 28) or
        (B, 3, 32, 32).
    method : str, optional
        ODE models only. Default ``"dopri5"`` (``odenet*``) or ``"rk4"``
        (``rknet``, which needs a fixed-step method).
    rtol, atol : float
        Tolerances of adaptive methods (default 1e-3, as in the paper's code).
    gradient : {"backprop", "adjoint", "checkpoint"}, optional
        ODE models only. Default ``"adjoint"`` (``odenet*``) or
        ``"backprop"`` (``rknet``).
    step_size : float, optional
        Fixed step for fixed-step methods (default 0.25: 4 steps).
    seminorm : bool
        Adjoint seminorm error control (see :class:`ODEBlock`).
    first_step : float, optional
        The adaptive method's first trial step (see :class:`ODEBlock`).
    regularization : Regularization, optional
        ODE models only: kinetic energy and Jacobian norm weights (see
        :class:`ODEBlock`).

    Returns
    -------
    Classifier
        Logits (B, 10); ``model.ode_blocks()`` lists its ODE blocks.

    Raises
    ------
    ValueError
        Unknown ``name``, ``dataset``, ``method`` or ``gradient``, an
        adaptive ``method`` for ``rknet``, or regularisers for a ResNet.

    Examples
    --------
    >>> import torch, ode_models
    >>> model = ode_models.build_model("rknet", "mnist")
    >>> sum(p.numel() for p in model.parameters())
    208266
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> model.ode_blocks()[0].nfe_forward  # four rk4 steps
    16
    """
    if name not in MODELS:
        raise ValueError(f"name: unknown model {name!r}; valid names are {', '.join(MODELS)}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset: unknown dataset {dataset!r}; valid names are {', '.join(DATASETS)}")
    check_regularization(name, regularization)
    in_channels = DATASETS[dataset][0]
    features: nn.Module
    if name == "resnet6":
        features = nn.Sequential(*(ResBlock(WIDTH) for _ in range(6)))
    elif name == "resnet1":
        features = ResBlock(WIDTH)
    elif name == "rknet":
        method = "rk4" if method is None else method
        if check_method(method).adaptive:
            raise ValueError(f"method: rknet uses a fixed-step method, got the adaptive {method!r}")
        features = ODEBlock(
            ODEFunc(WIDTH),
            method=method,
            rtol=rtol,
            atol=atol,
            gradient="backprop" if gradient is None else gradient,
            step_size=RKNET_STEP_SIZE if step_size is None else step_size,
            seminorm=seminorm,
            regularization=regularization,
        )
    else:
        features = ODEBlock(
            ODEFunc(WIDTH, time=name == "odenet"),
            method="dopri5" if method is None else method,
            rtol=rtol,
            atol=atol,
            gradient="adjoint" if gradient is None else gradient,
            step_size=step_size,
            seminorm=seminorm,
            first_step=first_step,
            regularization=regularization,
        )
    return Classifier(_stem(in_channels), features, _head())
