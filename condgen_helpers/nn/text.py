"""Short text prompts about a digit (notebook 08): the words, the prompts built from a digit's class
and its measured attributes, and a bag-of-words encoder.

A prompt such as "a thick seven leaning right" names up to three things:

- the digit, by its English word ("zero" ... "nine");
- the pen, by the image's ink mass (:func:`attributes.thickness`) against the other training images
  *of its own class*: the lightest third is "thin", the middle third "medium", the heaviest third
  "thick";
- the slant (:func:`attributes.slant`), again by thirds within the class: "leaning left", "upright",
  "leaning right".

Every third has a word, so a prompt that names no pen (or no slant) asks for any: in training the
part is left out at random, whatever the image's third. "A thick one" means a one drawn with more
ink than most ones, not as much ink as an eight. The
encoder reads a prompt as a *bag of words*: a count per word of the vocabulary (order is ignored;
"a", "an" and "digit" carry nothing). The empty prompt is all zeros: the "no prompt" that
classifier-free guidance needs.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ..errors import CondgenError
from .attributes import slant, thickness

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PEN_WORDS = ("thin", "medium", "thick")                        # by third of ink mass within the class
SLANT_WORDS = ("leaning left", "upright", "leaning right")     # by third of slant within the class
VOCAB = (*DIGIT_WORDS, "thin", "medium", "thick", "leaning", "left", "right", "upright")
IGNORED = ("a", "an", "digit")
PARTS = ("digit", "pen", "slant")


def tokenize(prompts, vocab=VOCAB) -> torch.Tensor:
    """Prompts (a string or a list of strings) -> word counts (N, len(vocab)) float32.
    Case and punctuation are ignored; a word outside ``vocab`` gets a one-line error naming it."""
    if isinstance(prompts, str):
        prompts = [prompts]
    index = {w: i for i, w in enumerate(vocab)}
    out = torch.zeros(len(prompts), len(vocab))
    for row, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise CondgenError(f"a prompt must be a string, got {type(prompt).__name__}")
        for word in re.findall(r"[a-z]+", prompt.lower()):
            if word in IGNORED:
                continue
            if word not in index:
                raise CondgenError(f"unknown word {word!r} in prompt {prompt!r}: the model knows "
                                   f"{', '.join(vocab)}")
            out[row, index[word]] += 1
    return out


def prompt_text(digit: int | None, pen: int | None = None, tilt: int | None = None) -> str:
    """The prompt naming ``digit`` (0-9), the pen's third ``pen`` (0 thin, 1 medium, 2 thick) and
    the slant's third ``tilt`` (0, 1, 2), each left out when None: e.g. (7, 2, 2) -> "a thick seven
    leaning right"."""
    words = ["a"]
    if pen is not None:
        words.append(PEN_WORDS[pen])
    words.append(DIGIT_WORDS[digit] if digit is not None else "digit")
    if tilt is not None:
        words.append(SLANT_WORDS[tilt])
    return "" if words == ["a", "digit"] else " ".join(words)   # naming nothing is the empty prompt


class AttributeThirds(nn.Module):
    """Which third of its own class an image falls in, for ink mass and for slant.

    ``fit(images, labels)`` stores, per class, the 1/3 and 2/3 quantiles of both attributes over the
    training images; ``forward(images, labels)`` gives (N, 2) int64 in {0, 1, 2}: (pen, slant)."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("cuts", torch.zeros(n_classes, 2, 2))   # class, attribute, (1/3, 2/3)
        self.register_buffer("fitted", torch.tensor(False))

    @staticmethod
    def measure(images: torch.Tensor) -> torch.Tensor:
        return torch.stack([thickness(images), slant(images)], dim=1)

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> AttributeThirds:
        values = self.measure(images)
        for c in range(self.n_classes):
            vc = values[labels.cpu() == c]
            if len(vc) < 3:
                raise CondgenError(f"class {c} has {len(vc)} training images: its thirds need at least 3")
            self.cuts[c] = torch.quantile(vc, torch.tensor([1 / 3, 2 / 3]), dim=0).T.to(self.cuts)
        self.fitted.fill_(True)
        return self

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise CondgenError("the attribute thirds are not fitted: call fit(train_images, train_labels) "
                               "first (training with condgen's fit does it for you)")
        values = self.measure(images).to(self.cuts.device)
        cuts = self.cuts[labels.to(self.cuts.device)]                # (N, 2, 2)
        return (values[:, :, None] > cuts).sum(-1)


def parts_to_counts(digits: torch.Tensor, thirds: torch.Tensor, mention: torch.Tensor) -> torch.Tensor:
    """Word counts (N, len(VOCAB)) of the prompts that name, where ``mention`` (N, 3) bool says so,
    the digit (N,), the pen's third and the slant's third (``thirds`` (N, 2)); the batched twin of
    ``tokenize([prompt_text(...)])`` used in training."""
    n = len(digits)
    out = torch.zeros(n, len(VOCAB), device=digits.device)
    rows = torch.arange(n, device=digits.device)
    out[rows, digits] += mention[:, 0].float()
    pen, tilt = thirds[:, 0], thirds[:, 1]
    out[rows, VOCAB.index("thin")] += (mention[:, 1] & (pen == 0)).float()
    out[rows, VOCAB.index("medium")] += (mention[:, 1] & (pen == 1)).float()
    out[rows, VOCAB.index("thick")] += (mention[:, 1] & (pen == 2)).float()
    out[rows, VOCAB.index("leaning")] += (mention[:, 2] & (tilt != 1)).float()
    out[rows, VOCAB.index("left")] += (mention[:, 2] & (tilt == 0)).float()
    out[rows, VOCAB.index("right")] += (mention[:, 2] & (tilt == 2)).float()
    out[rows, VOCAB.index("upright")] += (mention[:, 2] & (tilt == 1)).float()
    return out


class BagOfWords(nn.Module):
    """Word counts (N, V) -> a prompt vector (N, out_dim): a learned vector per word, summed, then a
    small MLP. The empty prompt (all zeros) maps to a learned constant: the "no prompt" entry."""

    def __init__(self, vocab_size: int = len(VOCAB), dim: int = 64, out_dim: int = 32):
        super().__init__()
        self.out_dim = out_dim
        self.words = nn.Linear(vocab_size, dim)
        self.mix = nn.Sequential(nn.SiLU(), nn.Linear(dim, out_dim))

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        return self.mix(self.words(counts))
