"""Offline datasets for training candidates: ``load_dataset(name)`` gives stratified train/val/test splits.

Built-in names are listed in :data:`DATASETS` (``digits``, ``mnist1d``, ``mnist5k``); an ``.npz`` file or an image
folder (one subfolder per class) loads user data. Nothing is downloaded.
"""

from nas.data.datasets import DATASETS, Dataset, DatasetError, Split, load_dataset

__all__ = ["DATASETS", "Dataset", "DatasetError", "Split", "load_dataset"]
