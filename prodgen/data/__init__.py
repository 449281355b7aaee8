"""Catalog sources (built-in Fashion-MNIST, folders of photos), preprocessing, splits and manifests."""

from prodgen.data.catalog import SPLITS, Catalog, list_catalogs, load_catalog
from prodgen.data.fashion_mnist import prepare_fashion_mnist
from prodgen.data.folder import PrepareResult, prepare_folder
from prodgen.data.preprocess import PrepSettings

__all__ = [
    "SPLITS",
    "Catalog",
    "PrepSettings",
    "PrepareResult",
    "list_catalogs",
    "load_catalog",
    "prepare_fashion_mnist",
    "prepare_folder",
]
