"""Standard Inception-v3 FID, for comparison with published numbers, through torch-fidelity.

prodgen never downloads the weights (there is no network here) and never reports a number
without them: the user points to a local copy of torch-fidelity's converted TensorFlow weights.
torch-fidelity is not a prodgen dependency because it pulls in torchvision; install it with
`pip install torch-fidelity` to use this metric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from prodgen.errors import ProdgenError
from prodgen.progress import make_progress

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_NAME}"
FEATURE_LAYER = "2048"


def check_inception_weights(weights_path: str | Path | None) -> Path:
    if weights_path is None:
        raise ProdgenError(f"Inception FID needs local Inception-v3 weights: download {WEIGHTS_URL} and pass its path.")
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise ProdgenError(f"Inception weights file not found: {path}. Download {WEIGHTS_NAME} from {WEIGHTS_URL} and pass its path.")
    return path


def _load_extractor(weights: Path) -> torch.nn.Module:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as exc:
        raise ProdgenError(
            "Inception FID needs the torch-fidelity package (it also installs torchvision): pip install torch-fidelity"
        ) from exc
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE_LAYER], feature_extractor_weights_path=str(weights))
    except Exception as exc:  # torch-fidelity raises bare RuntimeError/KeyError/pickle errors for a bad file
        raise ProdgenError(f"Cannot load Inception weights from {weights}: {exc}") from exc


@torch.no_grad()
def inception_features(images: np.ndarray, weights_path: str | Path | None, batch_size: int = 64) -> np.ndarray:
    """2048-d pool features of uint8 (N, H, W, C) images; grey images are repeated to RGB and
    torch-fidelity resizes to 299 px as the TensorFlow reference does."""
    extractor = _load_extractor(check_inception_weights(weights_path))
    features = []
    with make_progress(transient=True) as progress:
        task = progress.add_task("Inception features", total=len(images))
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).permute(0, 3, 1, 2)
            if batch.shape[1] == 1:
                batch = batch.repeat(1, 3, 1, 1)
            features.append(extractor(batch)[0].double().numpy())
            progress.advance(task, len(batch))
    return np.concatenate(features)
