from __future__ import annotations

import ode_models
import pytest
import torch
from ode_models import DATASETS, MODELS, ODEBlock, ODEFunc, build_model

# Chen et al. (2018), table 1: parameter counts on MNIST.
PAPER_PARAMETERS = {"resnet6": 0.60e6, "resnet1": 0.22e6, "odenet": 0.22e6, "odenet-notime": 0.22e6, "rknet": 0.22e6}


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_parameter_counts_match_paper(name: str) -> None:
    count = n_parameters(build_model(name, "mnist"))
    assert abs(count - PAPER_PARAMETERS[name]) <= 0.10 * PAPER_PARAMETERS[name], count


def test_exact_parameter_counts() -> None:
    # Stem 132,096 + head 778, plus 74,112 per residual block or 75,392 for
    # the ODE dynamics (two 65-input-channel convolutions, three norms).
    assert n_parameters(build_model("resnet6", "mnist")) == 577_546
    assert n_parameters(build_model("resnet1", "mnist")) == 206_986
    assert n_parameters(build_model("odenet", "mnist")) == 208_266
    assert n_parameters(build_model("odenet-notime", "mnist")) == 208_266 - 2 * 64 * 9


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("name", MODELS)
def test_output_shapes(name: str, dataset: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, dataset)
    x = torch.randn(2, *DATASETS[dataset])
    side = {"mnist": 6, "cifar10": 7}[dataset]
    assert model.stem(x).shape == (2, 64, side, side)
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    assert len(model.ode_blocks()) == (0 if name.startswith("resnet") else 1)


def test_odenet_nfe_counters() -> None:
    torch.manual_seed(0)
    model = build_model("odenet", "mnist")
    (block,) = model.ode_blocks()
    assert (block.method, block.gradient, block.step_size, block.seminorm) == ("dopri5", "adjoint", None, False)
    x = torch.randn(1, 1, 28, 28)

    loss = model(x).square().sum()
    first_forward = block.nfe_forward
    assert first_forward > 0
    assert block.nfe_backward == 0
    loss.backward()
    first_backward = block.nfe_backward
    assert first_backward > 0
    assert block.last_stats is not None
    assert block.nfe_backward > 0
    assert all(p.grad is not None for p in block.func.parameters())

    model(x).sum().backward()
    assert block.total_nfe_forward == first_forward + block.nfe_forward
    assert block.total_nfe_backward == first_backward + block.nfe_backward

    with torch.no_grad():
        model(x)
    assert block.nfe_backward == 0
    assert block.total_nfe_forward > 2 * min(first_forward, block.nfe_forward)

    model.reset_nfe()
    assert (block.nfe_forward, block.nfe_backward, block.total_nfe_forward, block.total_nfe_backward) == (0, 0, 0, 0)


def test_rknet_is_fixed_step_rk4_backprop() -> None:
    model = build_model("rknet", "mnist")
    (block,) = model.ode_blocks()
    assert (block.method, block.gradient, block.step_size) == ("rk4", "backprop", 0.25)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    assert block.nfe_forward == 4 * 4  # 4 steps of 4 stages
    assert block.nfe_backward == 0  # autograd through the steps
    assert build_model("rknet", "mnist", step_size=0.5).ode_blocks()[0].step_size == 0.5
    with pytest.raises(ValueError, match="method: rknet"):
        build_model("rknet", "mnist", method="dopri5")


def block_gradient(gradient: str, z: torch.Tensor, **kwargs: object) -> tuple[torch.Tensor, ODEBlock]:
    torch.manual_seed(1)
    block = ODEBlock(ODEFunc(64), gradient=gradient, rtol=1e-4, atol=1e-4, **kwargs).double()  # type: ignore[arg-type]
    z = z.clone().requires_grad_(True)
    block(z).square().sum().backward()
    grads = [z.grad, *(p.grad for p in block.parameters())]
    return torch.cat([g.reshape(-1) for g in grads if g is not None]), block


def test_gradient_engines_agree() -> None:
    # checkpoint differentiates the same discrete solve as backprop: equal
    # to rounding; the adjoint solves the continuous adjoint ODE backwards,
    # so it agrees to within the tolerance's effect (a few percent at 1e-4).
    torch.manual_seed(0)
    z = torch.randn(1, 64, 6, 6, dtype=torch.float64)
    backprop, _ = block_gradient("backprop", z)
    checkpoint, _ = block_gradient("checkpoint", z)
    adjoint, block = block_gradient("adjoint", z, seminorm=True)
    torch.testing.assert_close(checkpoint, backprop, rtol=1e-9, atol=1e-9)
    assert (adjoint - backprop).norm() < 0.1 * backprop.norm()
    assert block.nfe_backward > 0
    with pytest.raises(ValueError, match="seminorm: applies to gradient='adjoint' only"):
        ODEBlock(ODEFunc(64), gradient="backprop", seminorm=True)


def test_fixed_step_method_for_odenet_defaults_step_size() -> None:
    block = build_model("odenet", "cifar10", method="euler").ode_blocks()[0]
    assert block.step_size == 0.25
    block(torch.randn(1, 64, 7, 7))
    assert block.nfe_forward == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "resnet2", "dataset": "mnist"}, "name: unknown model 'resnet2'; valid names are resnet6, resnet1"),
        ({"name": "odenet", "dataset": "svhn"}, "dataset: unknown dataset 'svhn'; valid names are mnist, cifar10"),
        ({"name": "odenet", "dataset": "mnist", "method": "rk5"}, "method: unknown method 'rk5'"),
        ({"name": "odenet", "dataset": "mnist", "gradient": "exact"}, "gradient: expected one of"),
        ({"name": "odenet", "dataset": "mnist", "rtol": 0.0}, "rtol: expected a positive number"),
        ({"name": "rknet", "dataset": "mnist", "step_size": -1.0}, "step_size: expected a positive number"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)  # type: ignore[arg-type]


def test_public_names() -> None:
    for name in ode_models.__all__:
        assert hasattr(ode_models, name)
    assert isinstance(build_model("odenet", "mnist").features, ODEBlock)
