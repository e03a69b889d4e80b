"""The plain single-replica GAN as ordinary nn.Modules: the reference the ensemble is tested
against and the reference `ganplify bench` compares with. Not used in production.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganplify.bench import plain as models
from ganplify.generators.neural.gan.config import GanConfig
from ganplify.generators.neural.gan.networks import LEAKY_SLOPE, Architecture, _dropout
from ganplify.generators.neural.gan.step import (
    StepDraws,
    discriminator_objective,
    generator_objective,
)
from ganplify.generators.neural.layers import EnsembleLayers, replica_state_dict
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)


def plain_train_step(
    gen: models.PlainGenerator,
    disc: models.PlainDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    config: GanConfig,
    draws: StepDraws | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same training step for one replica as plain nn.Modules (the reference).

    Parameters
    ----------
    real : Tensor [B, d]
        The real batch (before the data noise).
    draws : StepDraws, optional
        One replica's draws (replica axis of length 1, see `StepDraws.replica`). Without them
        the step draws from torch's global generator, with F.dropout, like ordinary code.

    Returns
    -------
    (d_loss, g_loss, Omega) as 0-d tensors.
    """
    b, arch = real.shape[0], gen.arch
    if draws is None:
        dev = real.device  # the plain path ran on the CPU only until a GPU run found this
        z_d = torch.rand(b, arch.noise_dim, device=dev) * 2 - 1
        noise = (torch.rand(b, arch.dim, device=dev) * 2 - 1) * config.data_noise
        z_g = torch.rand(b, arch.noise_dim, device=dev) * 2 - 1
        gm_d = dm = gm_g = gmd = None
        dm_real = dm_fake = None
    else:
        z_d, noise, z_g = draws.d_noise[0], draws.data_noise[0], draws.g_noise[0]
        gm_d, dm, gm_g, gmd = (
            draws.d_generator_masks[0],
            draws.d_masks[0],
            draws.g_generator_masks[0],
            draws.g_masks[0],
        )
        dm_real, dm_fake = dm[:, :b], dm[:, b:]

    with torch.no_grad():
        fake = gen(z_d, gm_d)
    x_real = (real + noise).requires_grad_(True)
    x_fake = fake.detach().requires_grad_(True)
    logit_real = disc(x_real, dm_real)
    logit_fake = disc(x_fake, dm_fake)
    g_real, g_fake = torch.autograd.grad(
        logit_real.sum() + logit_fake.sum(), (x_real, x_fake), create_graph=True
    )
    d_loss, omega = discriminator_objective(
        logit_real, logit_fake, g_real.square().sum(-1), g_fake.square().sum(-1), config.gamma
    )
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward(inputs=list(disc.parameters()))
    opt_d.step()

    g_loss = generator_objective(disc(gen(z_g, gm_g), gmd))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward(inputs=list(gen.parameters()))
    opt_g.step()
    return d_loss.detach(), g_loss.detach(), omega.detach()


class PlainGenerator(nn.Module):
    """One replica of the generator as ordinary nn.Linear layers (the reference)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        specs = arch.generator_layers
        self.hidden = nn.ModuleList([nn.Linear(s.fan_in, s.fan_out) for s in specs[:-1]])
        self.out = nn.Linear(specs[-1].fan_in, specs[-1].fan_out)

    def forward(self, z: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """z [R, noise_dim], masks [layers, R, hidden] or None (F.dropout) -> [R, dim]."""
        h = z
        for i, layer in enumerate(self.hidden):
            h = _dropout(F.elu(layer(h)), None if masks is None else masks[i], self.arch.dropout)
        return self.out(h)


class PlainDiscriminator(nn.Module):
    """One replica of the discriminator: Phi as nn.Conv1d (kernel 1), the rest nn.Linear."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        specs = arch.discriminator_layers
        self.phi = nn.ModuleList([nn.Conv1d(s.fan_in, s.fan_out, 1) for s in specs[:3]])
        self.hidden = nn.ModuleList([nn.Linear(s.fan_in, s.fan_out) for s in specs[3:-1]])
        self.out = nn.Linear(specs[-1].fan_in, specs[-1].fan_out)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [n] of the points of one set x [n, d]; masks [layers, n, hidden] or None."""
        n = x.shape[0]
        if self.arch.set_input == "differences":
            h = (x.unsqueeze(0) - x.unsqueeze(1)).transpose(1, 2)  # [i, d, j] = x_j - x_i
        else:
            h = x.T.unsqueeze(0)  # one set: [1, d, n]
        for conv in self.phi:
            h = F.leaky_relu(conv(h), LEAKY_SLOPE)
        summary = h.std(dim=2).expand(n, self.arch.embedding)
        h = torch.cat([x, summary], dim=1)
        for i, layer in enumerate(self.hidden):
            h = F.leaky_relu(layer(h), LEAKY_SLOPE)
            h = _dropout(h, None if masks is None else masks[i], self.arch.dropout)
        return self.out(h).squeeze(1)


def copy_replica_to_plain(module: EnsembleLayers, k: int, plain: nn.Module) -> None:
    """Copy replica k of an ensemble into a plain module of the same architecture."""
    plain.load_state_dict(replica_state_dict(module, k))
