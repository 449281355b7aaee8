"""Issue 16's small-catalog GAN parts: resize-convolution upsampling, the lightweight GAN (skip-layer
excitation, a self-supervised discriminator) and adaptive discriminator augmentation (ADA)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from prodgen.config import load_config
from prodgen.distributed import DistributedEnv
from prodgen.errors import ProdgenError
from prodgen.generate import ProductGenerator
from prodgen.losses import mode_seeking_loss, spectral_loss
from prodgen.metrics.image_statistics import power_spectrum
from prodgen.models import build_discriminator, build_generator
from prodgen.models.layers import HighFrequencyEnergy, LatentPixelNoise, MinibatchStandardDeviation, build_upsampler
from prodgen.models.lightweight import decoder_targets, quarter_of
from prodgen.models.multiscale import MultiScaleDiscriminator
from prodgen.train.augment import AdaptiveAugmentation, diff_augment
from prodgen.train.families import gan as gan_family
from prodgen.train.loop import train
from prodgen.train.randomness import SharedRandom

from .conftest import config, losses

SINGLE_PROCESS = DistributedEnv()


def _random(seed: int) -> SharedRandom:
    return SharedRandom(seed, rank=0, world_size=1, device=torch.device("cpu"))


def _interior_spread(images: torch.Tensor) -> float:
    """How far each channel of the interior (borders see the zero padding) is from constant."""
    interior = images.detach()[:, :, 2:-2, 2:-2]
    return float((interior.amax(dim=(2, 3)) - interior.amin(dim=(2, 3))).max())


@pytest.mark.parametrize("kind", ["transposed", "transposed-blur", "nearest", "blur", "subpixel"])
def test_upsamplers_double_the_size(kind):
    torch.manual_seed(0)
    assert build_upsampler(kind, 4, 6)(torch.randn(2, 4, 5, 7)).shape == (2, 6, 10, 14)


def test_a_constant_map_upsamples_to_a_checkerboard_only_through_a_bare_transposed_convolution():
    """Odena et al. (2016): a stride-2 transposed convolution gives output pixels different numbers
    of kernel taps, so even a constant input comes out patterned; a resize-convolution cannot, and
    the binomial blur after the transposed convolution removes the pattern, which sits at the Nyquist frequency."""
    torch.manual_seed(0)
    constant = torch.ones(1, 4, 8, 8)
    transposed = build_upsampler("transposed", 4, 3)
    assert _interior_spread(transposed(constant)) > 0.05
    blurred = build_upsampler("transposed-blur", 4, 3)
    blurred.conv.load_state_dict(transposed.state_dict())  # the same kernel, then the blur
    assert _interior_spread(blurred(constant)) < 1e-5
    assert _interior_spread(build_upsampler("nearest", 4, 3)(constant)) < 1e-5
    assert _interior_spread(build_upsampler("blur", 4, 3)(constant)) < 1e-5


def test_the_nearest_resize_convolution_runs_as_one_tied_transposed_convolution_with_the_same_output():
    torch.manual_seed(0)
    layer = build_upsampler("nearest", 5, 4, bias=True)
    x = torch.randn(2, 5, 6, 9)
    explicit = layer.conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))  # resize, then the 3x3
    assert torch.allclose(layer(x), explicit, atol=1e-5)
    explicit.square().sum().backward()
    explicit_grad = layer.conv.weight.grad.clone()
    layer.conv.weight.grad = None
    layer(x).square().sum().backward()  # the tied kernel's gradient reaches the 3x3 weights unchanged
    assert torch.allclose(layer.conv.weight.grad, explicit_grad, rtol=1e-4, atol=1e-4)


def test_a_list_names_each_layers_upsampling_coarsest_first():
    generator = build_generator("dcgan", z_dim=8, channels=3, height=32, width=32, width_mult=8, upsample=["transposed", "nearest", "blur"])
    assert [type(layer.conv).__name__ for layer in generator.layers[1:]] + [type(generator.out).__name__] == [
        "ConvTranspose2d", "_ResizeConvolution", "_BlurResizeConvolution"
    ]
    assert generator(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    lightweight = build_generator("lightweight", z_dim=8, channels=3, height=32, width=32, width_mult=8, upsample=["transposed", "transposed", "nearest"])
    assert [type(block.up).__name__ for block in lightweight.blocks] == ["ConvTranspose2d", "ConvTranspose2d", "_ResizeConvolution"]
    with pytest.raises(ProdgenError, match="upsample lists 2 layers; this generator has 3 2x layers, coarsest first"):
        build_generator("dcgan", z_dim=8, channels=3, height=32, width=32, width_mult=8, upsample=["transposed", "nearest"])


def test_unknown_upsampling_is_named():
    with pytest.raises(ProdgenError, match="Unknown upsampling 'pixelshuffle'; registered: transposed, transposed-blur, nearest, blur, subpixel"):
        build_upsampler("pixelshuffle", 4, 4)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_lightweight_pair_shapes_and_skip_layer_excitation(size):
    torch.manual_seed(0)
    generator = build_generator("lightweight", z_dim=16, channels=3, height=size, width=size, cardinalities=[3], width_mult=8)
    codes = torch.tensor([[0], [1], [2]])
    images = generator(torch.randn(3, 16), codes)
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1
    # the base map gates the block SLE_SPAN doublings above it: 32 px (3 doublings) has one gate
    assert len(generator.excite) == {32: 1, 64: 2, 128: 3}[size]
    discriminator = build_discriminator("lightweight", channels=3, height=size, width=size, cardinalities=[3], width_mult=8, decoders=True)
    output = discriminator(images, codes, quarters=torch.tensor([0, 1, 3]))
    assert output.logits.shape == (3,) and output.decoded is not None
    whole, part = output.decoded
    assert whole.shape == part.shape == (3, 3, 32, 32)
    assert discriminator(images, codes).decoded is None  # fake images are never decoded


def test_skip_layer_excitation_lets_the_low_resolution_map_gate_the_image():
    torch.manual_seed(0)
    generator = build_generator("lightweight", z_dim=8, channels=3, height=32, width=32, width_mult=8).eval()
    z = torch.randn(2, 8)
    before = generator(z)
    with torch.no_grad():
        generator.excite["3"].gate[-2].weight.zero_()  # every gate becomes sigmoid(0) = 1/2
    assert not torch.allclose(generator(z), before)


def test_self_supervised_decoders_need_32_px():
    with pytest.raises(ProdgenError, match="at least 32x32, not 28x28"):
        build_discriminator("lightweight", channels=1, height=28, width=28, decoders=True)


def test_quarters_and_decoder_targets():
    images = torch.arange(16.0).view(1, 1, 4, 4).repeat(4, 1, 1, 1)
    quarters = quarter_of(images, torch.tensor([0, 1, 2, 3]))
    assert quarters[:, 0].tolist() == [[[0, 1], [4, 5]], [[2, 3], [6, 7]], [[8, 9], [12, 13]], [[10, 11], [14, 15]]]
    real = torch.rand(2, 3, 64, 64)
    whole, part = decoder_targets(real, torch.tensor([3, 0]))
    assert whole.shape == part.shape == (2, 3, 32, 32)
    assert torch.allclose(whole[0, :, 0, 0], real[0, :, :2, :2].mean(dim=(1, 2)))
    assert torch.equal(part[0], real[0, :, 32:, 32:]) and torch.equal(part[1], real[1, :, :32, :32])


def test_diff_augment_with_a_probability_applies_each_policy_to_that_share_of_images():
    images = torch.rand(400, 3, 8, 8)
    never = diff_augment(images, ["color", "cutout"], _random(1), probability=0.0)
    assert torch.equal(never, images)
    always = diff_augment(images, ["cutout"], _random(1), probability=1.0)
    plain = diff_augment(images, ["cutout"], _random(1))
    assert torch.equal(always, plain)
    changed = (diff_augment(images, ["cutout"], _random(2), probability=0.3) != images).flatten(1).any(dim=1).float().mean()
    assert 0.22 < float(changed) < 0.38


def test_ada_raises_p_while_d_is_sure_of_the_real_images_and_lowers_it_after():
    ada = AdaptiveAugmentation(target=0.6, images_to_full=1000, interval=4)
    sure = torch.full((50,), 3.0)  # sign +1 everywhere: r = 1 > 0.6
    for _ in range(3):
        ada.observe(sure, SINGLE_PROCESS)
    assert ada.probability == 0.0  # p moves once per interval
    ada.observe(sure, SINGLE_PROCESS)
    assert ada.probability == pytest.approx(0.2)  # 4 steps x 50 images / 1000
    for _ in range(40):
        ada.observe(sure, SINGLE_PROCESS)
    assert ada.probability == 1.0  # clamped
    unsure = torch.cat([torch.ones(25), -torch.ones(25)])  # r = 0 < 0.6
    for _ in range(8):
        ada.observe(unsure, SINGLE_PROCESS)
    assert ada.probability == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.ada_target=0.6"], "data.ada_target tunes how often the data.augment policies apply, and data.augment is empty"),
        (["data.ada_images=5000"], r"data.ada_images paces ADA, which is off \(data.ada_target is null\)"),
        (["model.generator=resnet", "model.upsample=nearest"], r"model.upsample: the 'resnet' generator has fixed upsampling layers \(those that take one: dcgan, lightweight\)"),
        (["model.upsample=bicubic"], "model.upsample: unknown upsampling 'bicubic'; registered: transposed, transposed-blur, nearest, blur, subpixel"),
        (["model.upsample=[transposed, bicubic, lanczos]"], "model.upsample: unknown upsampling 'bicubic', 'lanczos'; registered: transposed, transposed-blur, nearest, blur, subpixel"),
        (["loss.spectral_from=0.5"], "loss.spectral_from: it narrows the spectral loss, and loss.spectral_weight is 0; set a weight too"),
        (["loss.spectral_per_frequency=true"], "loss.spectral_per_frequency: it sharpens the spectral loss, and loss.spectral_weight is 0; set a weight too"),
        (["loss.mode_seeking_pool=4"], "loss.mode_seeking_pool: it pools the mode-seeking loss, and loss.mode_seeking_weight is 0; set a weight too"),
        (
            ["model.discriminator=lightweight", "model.d_minibatch_std=4"],
            r"model.d_minibatch_std: the 'lightweight' discriminator has no such layer \(those that do: dcgan, sn-dcgan\)",
        ),
        (
            ["model.generator=resnet", "model.g_full_resolution=true"],
            r"model.g_full_resolution: the 'resnet' generator has no such layer \(those that do: dcgan\)",
        ),
        (
            ["model.generator=resnet", "model.g_fine_noise=true"],
            r"model.g_fine_noise: the 'resnet' generator has no such layer \(those that do: dcgan\)",
        ),
        (["model.self_supervised_weight=1"], r"model.self_supervised_weight: the 'dcgan' discriminator has no decoders \(those that have: lightweight\)"),
        (
            ["model.discriminator=lightweight", "model.d_high_frequency=true"],
            r"model.d_high_frequency: the 'lightweight' discriminator takes no extra input channel \(those that do: dcgan, sn-dcgan\)",
        ),
    ],
)
def test_small_catalog_options_are_checked(overrides, message):
    with pytest.raises(ProdgenError, match=message):
        load_config("fmnist-cgan", overrides)


LIGHTWEIGHT = {
    "data__pad_to": 32,  # the tiny catalog's 16 px padded to the decoders' 32
    "data__augment": ["translation", "color", "cutout"],
    "data__ada_target": 0.6,
    "data__ada_images": 200,
    "model__generator": "lightweight",
    "model__discriminator": "lightweight",
    "model__g_width": 8,
    "model__d_width": 8,
    "model__self_supervised_weight": 1.0,
}


def test_lightweight_gan_with_ada_trains_resumes_exactly_and_generates(tiny, tmp_path, monkeypatch):
    # a freshly initialised D is unsure of real images (E[sign] near -1 to 0 here), so a target
    # below that makes p rise at the first adjustment, step 4, after the resume point, step 3
    monkeypatch.setattr(gan_family, "AdaptiveAugmentation", lambda target, images: AdaptiveAugmentation(-0.99, images))
    straight = train(config(**LIGHTWEIGHT), runs_root=tmp_path / "a", show_progress=False)
    rows = [json.loads(line) for line in (straight.run_dir / "log.jsonl").read_text().splitlines()]
    assert all(row["d_rebuild"] > 0 for row in rows)
    assert [row["ada_p"] for row in rows] == [0.0, 0.0, 0.0, pytest.approx(0.16), pytest.approx(0.16), pytest.approx(0.16)]  # 4 steps x 8 images / 200
    half = train(config(**LIGHTWEIGHT, train__steps=3), runs_root=tmp_path / "b", show_progress=False)
    resumed = train(config(**LIGHTWEIGHT), resume=half.run_dir, show_progress=False)
    expected, got = losses(straight.run_dir), losses(resumed.run_dir)
    assert [got[s] for s in (4, 5, 6)] == [expected[s] for s in (4, 5, 6)]  # ADA's p came back with the checkpoint

    generator = ProductGenerator.load(straight.run_dir)
    images = generator.sample(3, {"category": "caps"}, seed=1)
    assert images.shape == (3, 16, 16, 3)
    assert (ProductGenerator.load(generator.export(tmp_path / "export")).sample(3, {"category": "caps"}, seed=1) == images).all()


def test_spectral_loss_is_zero_for_matching_spectra_and_pulls_a_checkerboard_toward_the_real_one():
    real = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    assert spectral_loss(real, real).item() < 1e-6
    checkerboard = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(16, 16)
    fake = (real.clone() * 0.8 + 0.4 * checkerboard).requires_grad_(True)  # the transposed convolution's artefact, at Nyquist
    before = spectral_loss(fake, real)
    assert before.item() > 0.05
    before.backward()
    stepped = (fake - 0.02 * fake.grad / fake.grad.abs().max()).detach()  # a small step down the gradient
    assert spectral_loss(stepped, real).item() < before.item()


def test_the_spectral_loss_on_the_upper_radii_ignores_low_frequency_differences_and_sees_a_checkerboard():
    real = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    rows = torch.arange(32.0)
    broad_wave = torch.sin(2 * torch.pi * rows / 32)[:, None].expand(32, 32)  # one period across the image: radius 1
    low_only = real + 2 * broad_wave
    assert spectral_loss(low_only, real).item() > 0.01  # the full loss counts radius 1 ...
    assert spectral_loss(low_only, real, from_share=0.5).item() < 1e-6  # ... the upper half does not
    checkerboard = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(16, 16)
    assert spectral_loss(real + 0.4 * checkerboard, real, from_share=0.5).item() > spectral_loss(real + 0.4 * checkerboard, real).item() > 0.01


def test_the_per_frequency_spectral_loss_sees_stripes_that_the_ring_average_cannot():
    noise = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    real = noise + 0.6 * noise.roll(1, dims=2)  # smoothed down the columns: less power at high vertical frequencies
    turned = real.transpose(2, 3).contiguous().requires_grad_(True)  # the same power, moved to the horizontal frequencies
    assert spectral_loss(turned, real).item() < 1e-6  # each ring holds the same power, in other directions
    loss = spectral_loss(turned, real, per_frequency=True)
    assert loss.item() > 0.1
    loss.backward()
    stepped = (turned - 0.02 * turned.grad / turned.grad.abs().max()).detach()
    assert spectral_loss(stepped, real, per_frequency=True).item() < loss.item()
    assert spectral_loss(real, real, from_share=0.5, per_frequency=True).item() < 1e-6


@pytest.mark.parametrize("per_frequency", [False, True], ids=["rings", "per-frequency"])
def test_a_gan_trains_with_spectral_regularisation(tiny, tmp_path, per_frequency):
    result = train(config(loss__spectral_weight=1.0, loss__spectral_per_frequency=per_frequency, train__steps=2), runs_root=tmp_path, show_progress=False)
    rows = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["g_spectral"] > 0 for row in rows)


def test_the_mode_seeking_loss_charges_pairs_that_land_together_and_its_gradient_pulls_them_apart():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    base = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    apart = torch.cat([base, -base]).requires_grad_(True)
    together = torch.cat([base, base])
    codes_gap = (z[:4] - z[4:]).abs().mean()
    assert mode_seeking_loss(apart, z).item() == pytest.approx(float(codes_gap / (2 * base.abs().mean())), rel=1e-4)
    assert mode_seeking_loss(together, z).item() > 1e4  # a collapsed pair: 1 / eps
    half_as_far = torch.cat([base, torch.zeros_like(base)])
    assert mode_seeking_loss(half_as_far, z).item() == pytest.approx(2 * mode_seeking_loss(apart, z).item(), rel=1e-4)
    loss = mode_seeking_loss(apart, z)
    loss.backward()
    stepped = (apart - 0.01 * apart.grad / apart.grad.abs().max()).detach()
    assert mode_seeking_loss(stepped, z).item() < loss.item()
    with pytest.raises(ValueError, match="at least 2"):
        mode_seeking_loss(base[:1], z[:1])


def test_a_gan_trains_with_mode_seeking_on_pairs_that_share_their_conditions(tiny, tmp_path, monkeypatch):
    drawn = []
    original = gan_family.GAN._fake

    def recording(self, generator, n, random, paired=False):
        fake, codes, z = original(self, generator, n, random, paired)
        drawn.append((paired, codes))
        return fake, codes, z

    monkeypatch.setattr(gan_family.GAN, "_fake", recording)
    result = train(config(loss__mode_seeking_weight=1.0, train__steps=2, train__batch_size=7), runs_root=tmp_path, show_progress=False)
    rows = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["g_mode_seeking"] > 0 for row in rows)
    paired = [codes for is_paired, codes in drawn if is_paired]
    # the loss compares images i and i + 3 of a batch of 7: those share their conditions, the 7th has no partner
    assert len(paired) == 2 and all(len(codes) == 7 and torch.equal(codes[:3], codes[3:6]) for codes in paired)
    assert any(len(set(map(tuple, codes[:3].tolist()))) > 1 for codes in paired)  # the pairs are of different conditions
    assert [is_paired for is_paired, _ in drawn].count(False) == 2  # D's batches (one D update a step) are not paired


@pytest.mark.parametrize(
    ("upsample", "hidden_layer", "image_layer"),
    [
        ("transposed-blur", "_BlurredTransposedConvolution", "_BlurredTransposedConvolution"),
        (["transposed", "nearest"], "ConvTranspose2d", "_ResizeConvolution"),
        (["nearest", "subpixel"], "_ResizeConvolution", "SubPixelConvolution"),
    ],
)
def test_a_gan_with_other_upsampling_trains_and_its_export_draws_the_same_images(tiny, tmp_path, upsample, hidden_layer, image_layer):
    # the tiny catalog's 16 px are two 2x layers above the 4x4 base map: one hidden, one drawing the image
    result = train(config(model__generator="dcgan", model__discriminator="sn-dcgan", model__upsample=upsample, train__steps=2), runs_root=tmp_path, show_progress=False)
    generator = ProductGenerator.load(result.run_dir)
    assert type(generator.module.layers[1].conv).__name__ == hidden_layer and type(generator.module.out).__name__ == image_layer
    images = generator.sample(3, {"category": "caps"}, seed=1)
    assert (ProductGenerator.load(generator.export(tmp_path / "export")).sample(3, {"category": "caps"}, seed=1) == images).all()


def test_high_frequency_energy_sees_a_checkerboard_whatever_its_phase_and_not_flat_colour_or_a_gentle_ramp():
    energy = HighFrequencyEnergy(3)
    checkerboard = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(8, 8).expand(1, 3, 16, 16)
    interior = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # the borders see the replicated edge
    seen = energy(0.3 * checkerboard)[interior]
    assert torch.allclose(seen, torch.full_like(seen, 0.3))  # its amplitude, everywhere
    assert torch.allclose(energy(-0.3 * checkerboard)[interior], seen)  # a one-pixel shift flips the sign, not the energy
    flat = torch.full((1, 3, 16, 16), 0.7)
    ramp = torch.linspace(-1, 1, 16).expand(1, 3, 16, 16)  # a linear ramp is left as it is by the low-pass
    assert energy(flat).abs().max() < 1e-6 and energy(ramp)[interior].abs().max() < 1e-6


@pytest.mark.parametrize("name", ["dcgan", "sn-dcgan"])
def test_a_discriminator_with_the_high_frequency_channel_passes_its_gradient_to_the_images(name):
    torch.manual_seed(0)
    plain = build_discriminator(name, channels=3, height=32, width=32, cardinalities=[3], width_mult=8)
    seeing = build_discriminator(name, channels=3, height=32, width=32, cardinalities=[3], width_mult=8, high_frequency=True)
    first = next(module for module in seeing.net if isinstance(module, torch.nn.Conv2d))
    assert first.in_channels == 4 and next(m for m in plain.net if isinstance(m, torch.nn.Conv2d)).in_channels == 3
    images = torch.zeros(2, 3, 32, 32, requires_grad=True)  # flat images: the energy channel is 0 here ...
    codes = torch.tensor([[0], [2]])
    seeing(images, codes).logits.sum().backward()
    with torch.no_grad():  # ... so a checkerboard is told apart from flat grey through that channel too
        first.weight[:, :3].zero_()
        checkerboard = 0.3 * torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(16, 16).expand(2, 3, 32, 32)
        assert not torch.allclose(seeing(checkerboard, codes).logits, seeing(torch.zeros(2, 3, 32, 32), codes).logits)
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_a_gan_trains_with_the_high_frequency_discriminator_channel(tiny, tmp_path):
    result = train(config(model__discriminator="sn-dcgan", model__d_high_frequency=True, train__steps=2), runs_root=tmp_path, show_progress=False)
    assert result.run_dir.joinpath("log.jsonl").read_text().count("d_adv") == 2
    with safe_open(str(result.run_dir / "ckpt-0000002" / "tensors.safetensors"), "pt") as tensors:
        assert tensors.get_slice("D.net.0.parametrizations.weight.original").get_shape()[1] == 4  # RGB + the energy channel


def test_a_gan_trains_with_the_full_resolution_layer_and_its_model_rebuilds_from_the_spec(tiny, tmp_path):
    result = train(config(model__generator="dcgan", model__upsample="nearest", model__g_full_resolution=True, train__steps=2), runs_root=tmp_path, show_progress=False)
    generator = ProductGenerator.load(result.run_dir)
    assert generator.spec["arguments"]["full_resolution_layer"] is True
    last_features = generator.module.layers[-1]
    out = generator.module.out
    assert isinstance(out, torch.nn.Conv2d) and out.stride == (1, 1) and out.kernel_size == (3, 3)
    size = tuple(generator.spec["output_size"][:2])
    seen = {}

    def record_side(module, inputs, output):
        seen["side"] = output.shape[2:]

    last_features.register_forward_hook(record_side)
    images = generator.module(torch.randn(2, generator.spec["arguments"]["z_dim"]), torch.zeros(2, 1, dtype=torch.long))
    assert tuple(seen["side"]) == tuple(images.shape[2:]) == size  # the last 2x layer already works at the output size


def _share_at_nyquist(images: torch.Tensor) -> float:
    """The images' power at the (Nyquist, Nyquist) frequency, an alternating +-1 pattern's, over what
    white noise of the same variance holds at every frequency (so about 1 for white noise)."""
    side = images.shape[-1]
    return float(power_spectrum(images)[0, 0] / (side * side * images.var()))  # the centred spectrum's corner: (Nyquist, Nyquist)


def test_latent_pixel_noise_draws_the_highest_frequencies_that_nearest_resizing_cannot():
    torch.manual_seed(0)
    z = torch.randn(256, 32)
    resized = build_upsampler("nearest", 4, 1)
    with torch.no_grad():
        resized_images = resized(torch.randn(256, 4, 16, 16))
    # a nearest 2x resize's 2x2 box is zero at Nyquist, whatever the 3x3 after it; only the zero padding leaks a little
    assert _share_at_nyquist(resized_images) < 0.01
    noise = LatentPixelNoise(z_dim=32, height=32, width=32, channels=1)
    assert float(noise(z).detach().abs().max()) == 0.0  # the filter starts at zero: G begins as it would without the layer
    with torch.no_grad():
        noise.filter.weight[0, 0, 1, 1] = 1.0  # the identity filter shows the raw noise
        raw = noise(z)
    assert torch.equal(raw, noise(z))  # one latent, one noise map: no fresh draw
    assert raw.shape == (256, 1, 32, 32)
    assert 0.8 < float(raw.var()) < 1.2  # a standard normal latent gives unit variance per pixel
    assert _share_at_nyquist(raw) > 0.5
    rebuilt = LatentPixelNoise(z_dim=32, height=32, width=32, channels=1)
    assert torch.equal(rebuilt.projection, noise.projection)  # the same projection on every build


def test_a_sub_pixel_convolution_starts_as_a_nearest_resize_and_untied_draws_what_a_resize_cannot():
    torch.manual_seed(0)
    layer = build_upsampler("subpixel", 4, 1)
    x = torch.randn(256, 4, 16, 16)
    with torch.no_grad():
        low = torch.nn.functional.conv2d(x, layer.conv.weight[:1], padding=1)  # the first sub-pixel's kernel at the input size
        assert torch.allclose(layer(x), torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest"), atol=1e-6)  # ICNR
        assert _share_at_nyquist(layer(x)) < 1e-6  # so, at the start, nothing at (Nyquist, Nyquist), as a resize
        layer.conv.weight.normal_()  # four kernels of their own, as training may make them
        assert _share_at_nyquist(layer(x)) > 0.1
    # the dcgan initialiser redraws every convolution; the sub-pixel kernels are tied again after it
    generator = build_generator("dcgan", z_dim=8, channels=3, height=32, width=32, width_mult=8, upsample=["nearest", "subpixel", "subpixel"])
    for kernels in (generator.layers[2].conv.conv.weight.detach(), generator.out.conv.weight.detach()):
        per_output = kernels.unflatten(0, (-1, 4))
        assert torch.equal(per_output, per_output[:, :1].expand_as(per_output)) and 0.015 < float(kernels.std()) < 0.025


def test_a_gan_trains_with_fine_noise_and_its_model_rebuilds_from_the_spec(tiny, tmp_path):
    result = train(config(model__generator="dcgan", model__upsample="nearest", model__g_fine_noise=True, train__steps=2), runs_root=tmp_path, show_progress=False)
    generator = ProductGenerator.load(result.run_dir)
    assert generator.spec["arguments"]["fine_noise"] is True
    assert float(generator.module.fine_noise.filter.weight.abs().sum()) > 0  # two steps moved the filter off zero
    z, codes = torch.randn(3, generator.spec["arguments"]["z_dim"]), torch.zeros(3, 1, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(generator.module(z, codes), generator.module(z, codes))


def test_minibatch_standard_deviation_is_the_spread_within_each_group():
    # 6 images, each one constant map of value v: groups of 3 take images (0, 2, 4) and (1, 3, 5)
    values = torch.tensor([0.0, 5.0, 1.0, 5.0, 2.0, 5.0])
    images = values[:, None, None, None].expand(6, 2, 3, 3)
    spread = MinibatchStandardDeviation(3)(images)
    assert spread.shape == (6, 3, 3, 3) and torch.equal(spread[:, :2], images)
    expected = torch.tensor([(2 / 3) ** 0.5, 1e-4] * 3)  # population std of (0, 1, 2); identical images give only the epsilon
    assert torch.allclose(spread[:, 2, 0, 0], expected, atol=1e-6)
    assert torch.equal(spread[:, 2], spread[:, 2, :1, :1].expand(6, 3, 3))  # one value over the whole map
    odd = MinibatchStandardDeviation(4)(torch.randn(6, 2, 3, 3))  # 4 does not divide 6: groups of 3
    assert odd.shape == (6, 3, 3, 3) and odd[:, 2].unique().numel() == 2


def test_a_gan_trains_with_the_minibatch_spread_in_its_discriminator(tiny, tmp_path):
    result = train(config(model__discriminator="sn-dcgan", model__d_minibatch_std=4, train__steps=2), runs_root=tmp_path, show_progress=False)
    assert result.run_dir.joinpath("log.jsonl").read_text().count("d_adv") == 2
    seeing = build_discriminator("sn-dcgan", channels=3, height=16, width=16, cardinalities=[2], width_mult=8, minibatch_std=4)
    blind = build_discriminator("sn-dcgan", channels=3, height=16, width=16, cardinalities=[2], width_mult=8)
    assert seeing.head.linear.parametrizations.weight.original.shape[1] == blind.head.linear.parametrizations.weight.original.shape[1] + 16  # one 4x4 map more


def test_pooled_mode_seeking_pays_for_variety_in_block_means_and_not_for_texture_inside_blocks():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    base = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    # a +-0.5 pattern that sums to zero over every 4x4 block: the pair differs in texture only
    texture = (torch.arange(8).view(1, 8) + torch.arange(8).view(8, 1)).remainder(2).float().sub(0.5).expand(4, 3, 8, 8)
    textured_pair = torch.cat([base, base + texture])
    assert mode_seeking_loss(textured_pair, z).item() < 100
    assert mode_seeking_loss(textured_pair, z, pool=4).item() > 1e4  # the same block means: a collapsed pair
    recoloured_pair = torch.cat([base, base + 0.5])
    assert mode_seeking_loss(recoloured_pair, z, pool=4).item() == pytest.approx(mode_seeking_loss(recoloured_pair, z).item(), rel=1e-4)


def test_a_multi_scale_discriminator_scores_each_scale_and_its_coarse_copies_see_only_block_means():
    torch.manual_seed(0)
    judge = MultiScaleDiscriminator("sn-dcgan", 3, channels=3, height=32, width=32, cardinalities=[3], width_mult=8, auxiliary=True).eval()
    assert [d.head.linear is not None and d.head.auxiliary is not None for d in judge.scales] == [True, False, False]  # class logits from the full size only
    images, codes = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([[0], [1], [2], [0]])
    out = judge(images, codes)
    assert out.logits.shape == (4, 3) and len(out.aux_logits) == 1 and out.aux_logits[0].shape == (4, 3)
    alone = build_discriminator("sn-dcgan", channels=3, height=16, width=16, cardinalities=[3], width_mult=8).eval()
    alone.load_state_dict(judge.scales[1].state_dict())
    assert torch.allclose(out.logits[:, 1], alone(torch.nn.functional.avg_pool2d(images, 2), codes).logits, atol=1e-5)
    assert out.features.shape == (4, sum(d.head.linear.parametrizations.weight.original.shape[1] for d in judge.scales))
    # a +-0.5 checkerboard averages out over every 2x2 block: only the full-size discriminator sees it
    checkerboard = torch.tensor([[0.5, -0.5], [-0.5, 0.5]]).repeat(16, 16).expand(4, 3, 32, 32)
    textured = judge(images + checkerboard, codes)
    assert not torch.allclose(textured.logits[:, 0], out.logits[:, 0], atol=1e-3)
    assert torch.allclose(textured.logits[:, 1:], out.logits[:, 1:], atol=1e-5)


def test_multi_scale_sizes_that_do_not_halve_evenly_are_refused():
    with pytest.raises(ProdgenError, match=r"model.d_scales 4: 36x20 images do not halve evenly 3 times"):
        MultiScaleDiscriminator("sn-dcgan", 4, channels=3, height=20, width=36, width_mult=8)
    with pytest.raises(ProdgenError, match=r"model.d_scales 3: the 'sn-dcgan' discriminator cannot judge 9x5 images \("):
        MultiScaleDiscriminator("sn-dcgan", 3, channels=3, height=20, width=36, width_mult=8)


def test_a_gan_trains_and_resumes_exactly_with_a_multi_scale_discriminator(tiny, tmp_path):
    overrides = {"model__discriminator": "sn-dcgan", "model__d_scales": 2, "loss__kind": "hinge"}
    straight = train(config(**overrides, train__steps=4), runs_root=tmp_path / "a", show_progress=False)
    half = train(config(**overrides, train__steps=2), runs_root=tmp_path / "b", show_progress=False)
    resumed = train(config(**overrides, train__steps=4), resume=half.run_dir, show_progress=False)
    expected, got = losses(straight.run_dir), losses(resumed.run_dir)
    assert len(expected) == 4 and [got[s] for s in (3, 4)] == [expected[s] for s in (3, 4)]  # both scales came back with the checkpoint


def test_a_gan_with_a_mirrored_catalog_trains_on_both_orientations(tiny, tmp_path, monkeypatch):
    from prodgen.train.data import TrainingData

    asked, read = [], TrainingData.read
    monkeypatch.setattr(TrainingData, "read", lambda self, positions: (asked.append((len(self), positions)), read(self, positions))[1])
    train(config(data__mirror=True, train__prefetch=0), runs_root=tmp_path, show_progress=False)
    photos = asked[0][0]
    drawn = torch.cat([positions for _, positions in asked])
    assert len(drawn) == 6 * 8 and int(drawn.max()) < 2 * photos
    assert int((drawn >= photos).sum()) > 8  # about half of the 48 draws are mirror images
