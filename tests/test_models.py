"""The paper's networks: sizes, semantics, ensemble/plain equivalence, initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganplify import rng
from ganplify.bench import plain as plain_ref
from ganplify.generators.neural import layers as ens_layers
from ganplify.generators.neural.gan import networks as models
from tests import helpers

SMALL = {"noise_dim": 12, "hidden": 16, "layers": 3, "embedding": 5}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_parameter_counts_d1():
    arch = models.Architecture(dim=1)
    assert helpers.generator_parameter_count(arch) == 651_265
    assert helpers.discriminator_parameter_count(arch) == 478_241
    assert _count(plain_ref.PlainGenerator(arch)) == 651_265
    assert _count(plain_ref.PlainDiscriminator(arch)) == 478_241
    assert _count(models.EnsembleGenerator(arch, 3)) == 3 * 651_265
    assert _count(models.EnsembleDiscriminator(arch, 3)) == 3 * 478_241


@pytest.mark.parametrize("dim", [1, 2, 5, 7])
@pytest.mark.parametrize("set_input", models.SET_INPUTS)
def test_parameter_count_formula(dim, set_input):
    for arch in (
        models.Architecture(dim=dim, set_input=set_input),
        models.Architecture(dim=dim, set_input=set_input, **SMALL),
    ):
        assert helpers.generator_parameter_count(arch) == _count(plain_ref.PlainGenerator(arch))
        assert helpers.discriminator_parameter_count(arch) == _count(
            plain_ref.PlainDiscriminator(arch)
        )
        assert helpers.parameter_count(arch.generator_layers) == _count(
            models.EnsembleGenerator(arch, 1)
        )
    # d enters the generator's output layer and the discriminator's two input layers
    paper = models.Architecture(dim=dim)
    assert helpers.generator_parameter_count(paper) == 651_265 + 257 * (dim - 1)
    assert helpers.discriminator_parameter_count(paper) == 478_241 + 2 * 256 * (dim - 1)


def test_paper_layer_structure():
    arch = models.Architecture(dim=2)
    gen = plain_ref.PlainGenerator(arch)
    assert [(m.in_features, m.out_features) for m in gen.hidden] == [(1000, 256)] + [(256, 256)] * 6
    assert (gen.out.in_features, gen.out.out_features) == (256, 2)
    disc = plain_ref.PlainDiscriminator(arch)
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in disc.phi] == [
        (2, 256, (1,)),
        (256, 256, (1,)),
        (256, 32, (1,)),
    ]
    assert [(m.in_features, m.out_features) for m in disc.hidden] == [(34, 256)] + [(256, 256)] * 6
    assert (disc.out.in_features, disc.out.out_features) == (256, 1)


def test_architecture_validates():
    with pytest.raises(ValueError):
        models.Architecture(dim=0)
    with pytest.raises(ValueError):
        models.Architecture(dim=1, set_input="pairs")
    with pytest.raises(ValueError):
        models.Architecture(dim=1, dropout=1.0)


def _ensembles(arch, seeds):
    keys = rng.replica_keys(seeds)
    gen, disc = (
        models.EnsembleGenerator(arch, len(seeds)),
        models.EnsembleDiscriminator(arch, len(seeds)),
    )
    ens_layers.init_replicas_(gen, keys, 1)
    ens_layers.init_replicas_(disc, keys, 2)
    return keys, gen, disc


@pytest.mark.parametrize("set_input", models.SET_INPUTS)
def test_ensemble_matches_plain_modules(set_input):
    arch = models.Architecture(dim=2, set_input=set_input, **SMALL)
    keys, gen, disc = _ensembles(arch, [3, 4, 5])
    b, layers, h = 6, arch.layers, arch.hidden
    z = rng.uniform_range(keys, 7, 0, (b, arch.noise_dim), -1, 1)
    gmask = rng.keep_mask(keys, 8, 0, (layers, b, h), 0.5).float() * 2
    x = rng.uniform_range(keys, 9, 0, (2, b, 2), -3, 3)
    dmask = rng.keep_mask(keys, 10, 0, (layers, 2 * b, h), 0.5).float() * 2
    out, logits = gen(z, gmask), disc(x, dmask)
    assert out.shape == (3, b, 2) and logits.shape == (3, 2, b)
    for k in range(3):
        pg, pd = plain_ref.PlainGenerator(arch), plain_ref.PlainDiscriminator(arch)
        plain_ref.copy_replica_to_plain(gen, k, pg)
        plain_ref.copy_replica_to_plain(disc, k, pd)
        torch.testing.assert_close(pg(z[k], gmask[k]), out[k], rtol=1e-5, atol=1e-6)
        for s in range(2):
            expected = pd(x[k, s], dmask[k, :, s * b : (s + 1) * b])
            torch.testing.assert_close(expected, logits[k, s], rtol=1e-5, atol=1e-6)


def _phi(disc: models.EnsembleDiscriminator, k: int, points: torch.Tensor) -> torch.Tensor:
    h = points
    for i in range(3):
        h = F.leaky_relu(disc.affine(i, h.unsqueeze(0).expand(disc.n_replicas, -1, -1))[k], 0.01)
    return h


def test_differences_embedding_semantics():
    """Point i's summary is the Bessel-corrected std over j of Phi(x_j - x_i)."""
    arch = models.Architecture(dim=2, set_input="differences", **SMALL)
    _, _, disc = _ensembles(arch, [1])
    x = torch.randn(1, 1, 5, 2)
    summary = disc.embed(x)[0, 0]
    for i in range(5):
        h = _phi(disc, 0, x[0, 0] - x[0, 0, i])
        manual = ((h - h.mean(0)).square().sum(0) / (5 - 1)).sqrt()
        torch.testing.assert_close(summary[i], manual, rtol=1e-5, atol=1e-6)


def test_points_embedding_semantics():
    """One summary per set, the Bessel-corrected std over the points of Phi(x_j)."""
    arch = models.Architecture(dim=2, set_input="points", **SMALL)
    _, _, disc = _ensembles(arch, [1])
    x = torch.randn(1, 2, 5, 2)
    summary = disc.embed(x)[0]
    for s in range(2):
        h = _phi(disc, 0, x[0, s])
        manual = ((h - h.mean(0)).square().sum(0) / (5 - 1)).sqrt()
        for i in range(5):
            torch.testing.assert_close(summary[s, i], manual, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("set_input", models.SET_INPUTS)
def test_sets_and_replicas_are_isolated(set_input):
    arch = models.Architecture(dim=1, set_input=set_input, **SMALL)
    _, _, disc = _ensembles(arch, [1, 2])
    x = torch.randn(2, 2, 4, 1)
    before = disc(x, None)
    y = x.clone()
    y[1, 1] += 3.0  # change replica 1's second set only
    after = disc(y, None)
    assert torch.equal(before[0], after[0])
    assert torch.equal(before[1, 0], after[1, 0])
    assert not torch.allclose(before[1, 1], after[1, 1])


def test_plain_generator_keeps_dropout_in_eval_mode():
    arch = models.Architecture(dim=1, **SMALL)
    gen = plain_ref.PlainGenerator(arch).eval()
    z = torch.rand(20, arch.noise_dim) * 2 - 1
    torch.manual_seed(0)
    a = gen(z)
    b = gen(z)
    assert not torch.equal(a, b)


def test_init_bounds_distribution_and_replica_independence():
    arch = models.Architecture(dim=1, **SMALL)
    _, gen, disc = _ensembles(arch, [10, 11, 12])
    for module in (gen, disc):
        for name, param, spec in module.layout():
            bound = 1.0 / math.sqrt(spec.fan_in)
            assert param.abs().max() <= bound, name
    # a big layer's weights: mean 0 and variance bound**2 / 3 within 5 sigma
    arch = models.Architecture(dim=1)
    keys = rng.replica_keys([10])
    big = models.EnsembleGenerator(arch, 1)
    ens_layers.init_replicas_(big, keys, 1)
    w = big.weight[0].detach().double().flatten().numpy()  # 1000 x 256 from U(-b, b)
    b = 1 / math.sqrt(1000)
    n = w.size
    assert abs(w.mean()) < 5 * b / math.sqrt(3 * n)
    assert abs(w.var() - b**2 / 3) < 5 * b**2 * math.sqrt(4 / 45 / n)
    # replica 1 of (10, 11, 12) is the same as replica 11 alone
    _, alone, _ = _ensembles(models.Architecture(dim=1, **SMALL), [11])
    for p_all, p_one in zip(gen.parameters(), alone.parameters(), strict=True):
        assert torch.equal(p_all[1], p_one[0])
    assert not torch.equal(gen.weight[0][0], gen.weight[0][1])


def test_replica_state_dict_round_trip():
    arch = models.Architecture(dim=3, **SMALL)
    _, gen, disc = _ensembles(arch, [1, 2])
    pairs = ((gen, plain_ref.PlainGenerator), (disc, plain_ref.PlainDiscriminator))
    for module, plain_cls in pairs:
        states = [ens_layers.replica_state_dict(module, k) for k in range(2)]
        plain = plain_cls(arch)
        assert set(states[0]) == set(plain.state_dict())
        for name, t in plain.state_dict().items():
            assert states[0][name].shape == t.shape
        other = type(module)(arch, 2)
        ens_layers.load_replica_state_dicts_(other, states[::-1])
        for p, q in zip(module.parameters(), other.parameters(), strict=True):
            assert torch.equal(p[0], q[1]) and torch.equal(p[1], q[0])


def test_generator_without_masks_is_deterministic():
    arch = models.Architecture(dim=2, **SMALL)
    _, gen, _ = _ensembles(arch, [4])
    z = torch.rand(1, 7, arch.noise_dim)
    assert torch.equal(gen(z, None), gen(z, None))
    assert np.isfinite(gen(z, None).detach().numpy()).all()
