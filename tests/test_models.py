"""A small CPU test per architecture and per loss: shapes, conditioning, gradients."""

from __future__ import annotations

import pytest
import torch

from prodgen.errors import ProdgenError
from prodgen.losses import LOSSES, auxiliary_classification_loss, build_loss, gradient_penalty, r1_penalty
from prodgen.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator, plan_resolution
from prodgen.models.layers import ConditionalBatchNorm2d
from prodgen.train.augment import POLICIES, diff_augment
from prodgen.train.randomness import SharedRandom

GEOMETRIES = [(28, 28, 1), (32, 32, 3), (80, 64, 3)]  # (height, width, channels); 80x64 is a 4:5 product shot


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize(("height", "width", "channels"), GEOMETRIES)
def test_generators_make_images_of_the_catalog_geometry(name, height, width, channels):
    torch.manual_seed(0)
    generator = build_generator(name, z_dim=16, channels=channels, height=height, width=width, cardinalities=[4, 3], width_mult=16, attention=True)
    codes = torch.tensor([[0, 1], [3, 2]])
    images = generator(torch.randn(2, 16), codes)
    assert images.shape == (2, channels, height, width)
    assert images.abs().max() <= 1
    images.mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())


@pytest.mark.parametrize("name", ["resnet", "dcgan"])
def test_conditional_batchnorm_changes_the_generated_image(name):
    torch.manual_seed(0)
    generator = build_generator(name, z_dim=8, channels=1, height=28, width=28, cardinalities=[10], width_mult=16)
    norms = [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert norms and all(norm.conditional for norm in norms)
    with torch.no_grad():
        for norm in norms:  # trained category gains; they start at zero
            for table in norm.gain.tables:
                table.weight.normal_()
    generator.eval()
    z = torch.randn(1, 8).repeat(2, 1)
    if getattr(generator, "embed", None) is not None:
        with torch.no_grad():  # only the norms may differ between the two categories
            generator.embed.tables[0].weight[7] = generator.embed.tables[0].weight[0]
    images = generator(z, torch.tensor([[0], [7]]))
    assert not torch.allclose(images[0], images[1])


@pytest.mark.parametrize("cardinalities", [(), (10,)])
def test_dcgan_first_layer_is_the_transposed_convolution_of_z(cardinalities):
    torch.manual_seed(0)
    generator = build_generator("dcgan", z_dim=8, channels=3, height=80, width=64, cardinalities=cardinalities, width_mult=8)
    first = generator.layers[0]
    x = torch.randn(3, first.conv.in_channels, 1, 1)
    codes = torch.tensor([[1], [4], [9]]) if cardinalities else None
    expected = torch.relu(first.norm(first.conv(x), codes))
    assert torch.allclose(first(x, codes), expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
@pytest.mark.parametrize(("height", "width", "channels"), GEOMETRIES)
def test_discriminators_score_and_classify(name, height, width, channels):
    discriminator = build_discriminator(name, channels=channels, height=height, width=width, cardinalities=[4, 3], width_mult=8, auxiliary=True, attention=True)
    codes = torch.tensor([[0, 1], [3, 2]])
    out = discriminator(torch.randn(2, channels, height, width), codes)
    assert out.logits.shape[0] == 2 and out.features.shape[0] == 2
    assert [a.shape for a in out.aux_logits] == [(2, 4), (2, 3)]
    (out.logits.mean() + auxiliary_classification_loss(out, codes)).backward()


def test_resolution_plan_and_its_error():
    assert plan_resolution(28, 28) == (7, 7, 2)
    assert plan_resolution(32, 32) == (4, 4, 3)
    assert plan_resolution(80, 64) == (5, 4, 4)
    with pytest.raises(ProdgenError, match="Cannot build a network"):
        plan_resolution(30, 31)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ProdgenError, match="Unknown generator 'stylegan9'"):
        build_generator("stylegan9", z_dim=8, channels=1, height=28, width=28)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_trains_d_to_separate_real_from_fake(name):
    torch.manual_seed(0)
    loss = build_loss(name)
    discriminator = build_discriminator("projection", channels=1, height=16, width=16, width_mult=8)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-3)
    real, fake = torch.full((16, 1, 16, 16), 0.8), torch.full((16, 1, 16, 16), -0.8)
    for _ in range(30):
        value = loss.discriminator(discriminator(real), discriminator(fake))
        if name == "wgan-gp":
            value = value + 10 * gradient_penalty(discriminator, real, fake, None, torch.rand(16, 1, 1, 1))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    real_out, fake_out = discriminator(real), discriminator(fake)
    if name == "mmd":
        assert loss.generator(fake_out, real_out) > 0.01
    else:
        assert real_out.logits.mean() > fake_out.logits.mean()
        assert torch.isfinite(loss.generator(fake_out, real_out))


def test_r1_penalty_is_a_squared_gradient_norm():
    linear = build_discriminator("dcgan", channels=1, height=16, width=16, width_mult=4)
    x = torch.randn(4, 1, 16, 16)
    assert r1_penalty(linear, x, None) > 0


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_diff_augment_keeps_shape_and_gradients(policy):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, [policy], SharedRandom(seed=0, rank=0, world_size=1, device=torch.device("cpu")))
    assert y.shape == x.shape and not torch.equal(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
