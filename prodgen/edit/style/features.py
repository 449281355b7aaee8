"""Feature networks for style transfer, chosen by name, and the statistics style transfer reads
from them (Gram matrices, per-channel mean and standard deviation).

A feature network takes RGB images in [0, 1] (N, 3, H, W) and returns named feature maps. It says
which of its layers carry style (Gram matrices, Gatys et al. 2016), which carry content, and which
AdaIN re-normalises and a decoder inverts (Huang & Belongie 2017). Three kinds:

- `random-multiscale` (the default): untrained random filters over an image pyramid. Ustyuzhaninov
  et al. 2017 ("What does it take to generate natural textures?") showed that a single layer of
  random multi-scale filters carries texture statistics as well as a trained network's deep layers;
  it needs no weights at all (they follow from a fixed seed), so it works on a fresh clone with no
  download. The choice among candidates is measured in benchmarks/RESULTS.md.
- `catalog:NAME`: the catalog feature network of prodgen's evaluation suite
  (`prodgen eval fit-features --data NAME`): a small CNN trained to tell NAME's categories apart.
- a path to VGG-19 weights in torchvision's layout (a state_dict with `features.0.weight` ...), as
  `.safetensors`, or `.pth`/`.pt` read with `torch.load(weights_only=True)` (tensors only, no code).
  torchvision is not needed: the `features` layer list is defined here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prodgen.errors import ProdgenError

DEFAULT_FEATURES = "random-multiscale"
CATALOG_PREFIX = "catalog:"
VGG_SUFFIXES = (".safetensors", ".pth", ".pt")


class StyleFeatures(nn.Module):
    """A frozen network from RGB in [0, 1] to named feature maps (`features`). Subclasses fill `layer_order`
    (shallow to deep, the order they are computed in), `layer_channels`, `layer_scale`
    (downsampling factor of each layer), the three layer roles and `identity` (what a decoder was
    trained against: the network's kind and a digest of its weights)."""

    name: str
    identity: str
    layer_order: tuple[str, ...]
    layer_channels: dict[str, int]
    layer_scale: dict[str, int]
    style_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    adain_layers: tuple[str, ...]

    def freeze(self) -> StyleFeatures:
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    def features(self, images: torch.Tensor, layers: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def encoder_style_layers(self) -> tuple[str, ...]:
        """The style layers computed on the way to the deepest AdaIN layer: the ones AdaIN's decoder is trained to match."""
        limit = max(self.layer_order.index(layer) for layer in self.adain_layers)
        return tuple(layer for layer in self.style_layers if self.layer_order.index(layer) <= limit)


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


class RandomMultiscale(StyleFeatures):
    """One layer of random 5x5 filters (ReLU) at each level of a Gaussian image pyramid (1, 1/2, 1/4
    and 1/8 of the size): filters 5, 10, 20 and 40 pixels wide, in the spirit of Ustyuzhaninov et
    al.'s multi-scale random filters (they used 3 to 55 pixel filters at full resolution; a pyramid
    gives the wide ones for a fraction of the arithmetic). The pyramid blurs with the binomial
    [1 4 6 4 1] filter before each halving: plain average pooling would hand the optimiser
    gradients constant over 8x8 blocks, which print a visible grid. The filters are drawn from
    numpy's PCG64 with a fixed seed, each scaled to unit norm, so every install has the same network."""

    SCALES = (1, 2, 4, 8)
    KERNEL = 5

    def __init__(self, channels: tuple[int, ...] = (32, 48, 64, 64), seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.name = DEFAULT_FEATURES
        self.layer_order = tuple(f"scale{s}" for s in self.SCALES)
        self.layer_channels = dict(zip(self.layer_order, channels))
        self.layer_scale = dict(zip(self.layer_order, self.SCALES))
        self.filters = nn.ParameterList()
        for count in channels:
            weight = rng.standard_normal((count, 3, self.KERNEL, self.KERNEL))
            weight /= np.sqrt((weight**2).sum(axis=(1, 2, 3), keepdims=True))
            self.filters.append(nn.Parameter(torch.from_numpy(weight.astype(np.float32))))
        self.style_layers = self.layer_order
        # The full-resolution level among the content layers keeps the photo's fine edges, which the optimisation
        # otherwise trades for the style's (a training photo at 128 px, strength 0.9, stripes and dots: edge-map
        # SSIM 0.61 and 0.77 with it, 0.60 and 0.70 without; the style distance fell as far either way)
        self.content_layers = ("scale1", "scale2", "scale4")
        # The full-resolution level is left to the decoder to draw: computing it is most of this
        # network's arithmetic (3-channel 5x5 filters on every pixel), and AdaIN must be fast.
        self.adain_layers = self.layer_order[1:]
        binomial = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        self.register_buffer("blur", (torch.outer(binomial, binomial) / 256).view(1, 1, 5, 5))
        self.identity = f"{self.name}:{weights_digest({str(i): w for i, w in enumerate(self.filters)})}"
        self.freeze()

    def halve(self, level: torch.Tensor) -> torch.Tensor:
        """Blur and keep every other pixel, each colour plane on its own (as a batch of 1-channel images:
        the same sums as a grouped convolution, which runs on PyTorch's slow CPU path)."""
        n, c, h, w = level.shape
        planes = F.pad(level.reshape(n * c, 1, h, w), [2] * 4, mode="reflect")
        halved = F.conv2d(planes, self.blur, stride=2)
        return halved.view(n, c, *halved.shape[2:])

    def features(self, images, layers):
        level = images * 2 - 1
        deepest = max(self.layer_order.index(layer) for layer in layers)
        out = {}
        for depth, (name, weight) in enumerate(zip(self.layer_order[: deepest + 1], self.filters)):
            if depth:
                level = self.halve(level)
            if name in layers:
                out[name] = F.relu(F.conv2d(F.pad(level, [self.KERNEL // 2] * 4, mode="reflect"), weight))
        return out


class SequentialFeatures(StyleFeatures):
    """A plain stack of modules whose outputs at some indices are named layers (VGG, the catalog CNN)."""

    def __init__(self, body: nn.Sequential, names: dict[int, str], input_mean: list[float], input_std: list[float]) -> None:
        super().__init__()
        self.body = body
        self.name_at = dict(names)
        self.index_of = {name: index for index, name in names.items()}
        self.layer_order = tuple(names[i] for i in sorted(names))
        self.register_buffer("input_mean", torch.tensor(input_mean).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(input_std).view(1, 3, 1, 1))

    def features(self, images, layers):
        x = (images - self.input_mean) / self.input_std
        last = max(self.index_of[layer] for layer in layers)
        out = {}
        for index, module in enumerate(self.body[: last + 1]):
            x = module(x)
            if self.name_at.get(index) in layers:
                out[self.name_at[index]] = x
        return out


# torchvision's VGG-19 ("E") features: conv widths, "M" for 2x2 max-pooling.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
VGG_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al.'s layers
VGG_CONTENT = ("relu4_2",)
VGG_ADAIN = ("relu4_1",)  # Huang & Belongie's encoder ends here


def vgg19_conv_indices() -> list[tuple[int, str]]:
    """(index in `features`, ReLU name) of each conv, as torchvision numbers them: conv i, ReLU i+1, pools between blocks."""
    index, block, position, convs = 0, 1, 1, []
    for entry in VGG19_LAYOUT:
        if entry == "M":
            index, block, position = index + 1, block + 1, 1
        else:
            convs.append((index, f"relu{block}_{position}"))
            index, position = index + 2, position + 1
    return convs


class VGG19Features(SequentialFeatures):
    """torchvision's `vgg19().features` up to relu5_1, with the weights of a local file. The conv
    widths are read from the file (torchvision's are 64 to 512), every other fact of the layout is fixed."""

    DEEPEST = "relu5_1"

    def __init__(self, state: dict[str, torch.Tensor], source: Path) -> None:
        deepest_conv = next(index for index, name in vgg19_conv_indices() if name == self.DEEPEST)
        convs = [(index, name) for index, name in vgg19_conv_indices() if index <= deepest_conv]
        modules: list[nn.Module] = []
        names: dict[int, str] = {}
        in_channels = 3
        conv_at = dict(convs)
        for index in range(convs[-1][0] + 2):
            if index in conv_at:
                weight, bias = vgg_tensor(state, index, "weight", source), vgg_tensor(state, index, "bias", source)
                if weight.ndim != 4 or weight.shape[1:] != (in_channels, 3, 3) or bias.shape != (weight.shape[0],):
                    raise ProdgenError(f"{source}: features.{index}.weight has shape {tuple(weight.shape)} (bias {tuple(bias.shape)}); "
                                       f"VGG-19 needs (C, {in_channels}, 3, 3) there. Is this torchvision's vgg19 state_dict?")
                conv = nn.Conv2d(in_channels, weight.shape[0], 3, padding=1)
                conv.weight.data.copy_(weight)
                conv.bias.data.copy_(bias)
                modules.append(conv)
                in_channels = weight.shape[0]
            elif index - 1 in conv_at:
                modules.append(nn.ReLU())
                names[index] = conv_at[index - 1]
            else:
                modules.append(nn.MaxPool2d(2, 2))
        super().__init__(nn.Sequential(*modules), names, IMAGENET_MEAN, IMAGENET_STD)
        self.name = str(source)
        scale, self.layer_channels, self.layer_scale = 1, {}, {}
        for index, module in enumerate(modules):
            if isinstance(module, nn.MaxPool2d):
                scale *= 2
            elif index in names:
                self.layer_channels[names[index]] = modules[index - 1].out_channels
                self.layer_scale[names[index]] = scale
        self.style_layers, self.content_layers, self.adain_layers = VGG_STYLE, VGG_CONTENT, VGG_ADAIN
        self.identity = f"vgg19:{weights_digest({f'{i}.{kind}': vgg_tensor(state, i, kind, source) for i, _ in convs for kind in ('weight', 'bias')})}"
        self.freeze()


def vgg_tensor(state: dict[str, torch.Tensor], index: int, kind: str, source: Path) -> torch.Tensor:
    for key in (f"features.{index}.{kind}", f"{index}.{kind}"):  # vgg19().state_dict() or vgg19().features.state_dict()
        if key in state:
            return state[key].to(torch.float32)
    raise ProdgenError(f"{source} has no 'features.{index}.{kind}': VGG-19 weights must be torchvision's vgg19 state_dict "
                       f"(keys features.0.weight, features.0.bias, ..., features.34.bias).")


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, or of a .pth/.pt file read with weights_only=True (never unpickles code)."""
    if not path.is_file():
        raise ProdgenError(f"No VGG-19 weights file at {path}.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file, or a pickle that asks for code: both mean "not usable weights"
        raise ProdgenError(f"Cannot read VGG-19 weights from {path}: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ProdgenError(f"{path} does not hold a state_dict of tensors (torchvision's vgg19().state_dict()).")
    return state


class CatalogFeatures(SequentialFeatures):
    """The evaluation suite's catalog CNN (prodgen.metrics.features.FeatureCNN): its three ReLUs, at
    full, half and quarter resolution. Its BatchNorm runs in inference mode with the stored statistics."""

    def __init__(self, catalog: str) -> None:
        from prodgen.metrics.features import load_feature_network

        network = load_feature_network(catalog)
        if network.in_channels != 3:
            raise ProdgenError(f"The feature network of catalog {catalog!r} sees {network.in_channels}-channel (grey) images; style "
                               "transfer needs a colour one: prepare a colour catalog and run prodgen eval fit-features --data NAME.")
        body = network.model.body
        relus = [i for i, module in enumerate(body) if isinstance(module, nn.ReLU)]
        names = {index: f"relu{k + 1}" for k, index in enumerate(relus)}
        super().__init__(body[: relus[-1] + 1], names, [0.5] * 3, [0.5] * 3)  # it was trained on images in [-1, 1]
        self.name = f"{CATALOG_PREFIX}{catalog}"
        scale, self.layer_channels, self.layer_scale = 1, {}, {}
        for index, module in enumerate(self.body):
            if isinstance(module, nn.MaxPool2d):
                scale *= 2
            elif isinstance(module, nn.Conv2d):
                channels = module.out_channels
            elif index in names:
                self.layer_channels[names[index]], self.layer_scale[names[index]] = channels, scale
        self.style_layers = self.layer_order
        self.content_layers = self.layer_order  # all three, as random-multiscale: the finest keeps the edges
        self.adain_layers = self.layer_order[-1:]
        self.identity = f"catalog-cnn:{network.fingerprint}"
        self.freeze()


def load_features(name: str | None = None) -> StyleFeatures:
    """The feature network NAME_OR_VGG_FILE names: `random-multiscale`, `catalog:NAME`, or a VGG-19 weights file."""
    name = name or DEFAULT_FEATURES
    if name == DEFAULT_FEATURES:
        return RandomMultiscale()
    if name.startswith(CATALOG_PREFIX):
        return CatalogFeatures(name[len(CATALOG_PREFIX) :])
    path = Path(name).expanduser()
    if path.suffix.lower() in VGG_SUFFIXES:
        return VGG19Features(read_weights_file(path), path)
    raise ProdgenError(f"Unknown feature network {name!r}: use {DEFAULT_FEATURES}, {CATALOG_PREFIX}NAME (a catalog's evaluation network) "
                       f"or a VGG-19 weights file ({', '.join(VGG_SUFFIXES)}).")


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices, averaged over positions so image size does not scale them."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def gram_distance(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per image (N,): mean over layers of ||G - G_target||^2 / ||G_target||^2. Relative per layer, so a
    layer with large activations does not outweigh the others, whatever the network."""
    terms = [((grams[k] - targets[k]) ** 2).sum(dim=(1, 2)) / (targets[k] ** 2).sum(dim=(1, 2)).clamp_min(1e-12) for k in targets]
    return torch.stack(terms).mean(0)


@torch.no_grad()
def style_distance(network: StyleFeatures, images: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The Gram-matrix style distance of each image (N, 3, H, W) to one style image (1, 3, H', W')."""
    layers = network.style_layers
    targets = {k: gram(v) for k, v in network.features(style, layers).items()}
    grams = {k: gram(v) for k, v in network.features(images, layers).items()}
    return gram_distance(grams, {k: v.expand(len(images), -1, -1) for k, v in targets.items()})


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel mean and standard deviation, shaped (N, C, 1, 1). The variance is the squared
    vector norm of the centred values over their count: the same two-pass sum as torch.var, in a fifth of
    its CPU time (torch.var had been AdaIN's slowest step)."""
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)
    mean = flat.mean(-1, keepdim=True)
    variance = torch.linalg.vector_norm(flat - mean, dim=-1) ** 2 / flat.shape[-1]
    return mean.view(n, c, 1, 1), (variance + eps).sqrt().view(n, c, 1, 1)
