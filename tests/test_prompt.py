"""The prompt model of notebook 08: words, prompts built from measured attributes, the held-out
pairs, the negative-prompt velocity, a short training that must improve, and the null of the
attribute correlation."""

import itertools

import pytest
import torch

from condgen_helpers.data import load_dataset
from condgen_helpers.errors import CondgenError
from condgen_helpers.evaluation import correlation_null
from condgen_helpers.models.prompt import (
    HELD_OUT_PEN,
    HELD_OUT_SLANT,
    PromptFlow,
    held_out,
    training_mentions,
)
from condgen_helpers.nn.attributes import shear
from condgen_helpers.nn.text import VOCAB, AttributeThirds, parts_to_counts, prompt_text, tokenize
from condgen_helpers.training import fit


def test_tokenize_counts_words_ignores_case_punctuation_and_fillers():
    counts = tokenize(["A THICK seven, leaning right!", ""])
    assert counts.shape == (2, len(VOCAB))
    named = {VOCAB[i]: int(c) for i, c in enumerate(counts[0]) if c}
    assert named == {"thick": 1, "seven": 1, "leaning": 1, "right": 1}
    assert counts[1].sum() == 0                          # the empty prompt: no words at all
    assert tokenize("a digit").sum() == 0


def test_tokenize_refuses_an_unknown_word_in_one_line():
    with pytest.raises(CondgenError, match="unknown word 'bold'") as err:
        tokenize("a bold seven")
    assert "\n" not in str(err.value) and "thick" in str(err.value)
    with pytest.raises(CondgenError, match="must be a string"):
        tokenize([7])


def test_batched_prompt_counts_match_the_tokenised_text_for_every_combination():
    rows = list(itertools.product(range(10), range(3), range(3), *[(False, True)] * 3))
    digits = torch.tensor([r[0] for r in rows])
    thirds = torch.tensor([[r[1], r[2]] for r in rows])
    mention = torch.tensor([r[3:] for r in rows])
    texts = [prompt_text(d if m[0] else None, p if m[1] else None, s if m[2] else None)
             for d, p, s, *m in rows]
    assert torch.equal(parts_to_counts(digits, thirds, mention), tokenize(texts))
    assert prompt_text(7, 2, 2) == "a thick seven leaning right" and prompt_text(None) == ""


def test_thirds_split_each_class_in_three_and_follow_a_shear():
    train = load_dataset("digits", "train")
    thirds = AttributeThirds(10).fit(train.images, train.labels)
    levels = thirds(train.images, train.labels)
    for c in range(10):
        share = torch.bincount(levels[train.labels == c, 0], minlength=3).double() / (train.labels == c).sum()
        assert share.min() > 0.25                       # a third each, up to ties and small classes
    leaned = thirds(shear(train.images[:200], 1.0), train.labels[:200])[:, 1]
    assert (leaned >= levels[:200, 1]).all() and (leaned == 2).double().mean() > 0.8
    with pytest.raises(CondgenError, match="not fitted"):
        AttributeThirds(10)(train.images[:2], train.labels[:2])


def test_training_prompts_never_name_a_held_out_pair_but_know_every_word():
    g = torch.Generator().manual_seed(0)
    digits = torch.randint(10, (20000,), generator=g)
    thirds = torch.randint(3, (20000, 2), generator=g)
    mention = training_mentions(digits, 0.7, 0.1, generator=g)
    counts = parts_to_counts(digits, thirds, mention)
    pen = counts[:, [VOCAB.index(w) for w in ("thin", "medium", "thick")]].sum(1) > 0
    tilt = counts[:, [VOCAB.index(w) for w in ("leaning", "upright")]].sum(1) > 0
    named = mention[:, 0]
    assert not (named & pen & torch.isin(digits, torch.tensor(HELD_OUT_PEN))).any()
    assert not (named & tilt & torch.isin(digits, torch.tensor(HELD_OUT_SLANT))).any()
    # every word is still seen with the other digits, and the held-out digits with their own name
    for word in ("thin", "medium", "thick", "left", "right", "upright"):
        assert (named & (counts[:, VOCAB.index(word)] > 0)).sum() > 300
    assert (named & torch.isin(digits, torch.tensor(HELD_OUT_PEN + HELD_OUT_SLANT))).sum() > 0.3 * 6000
    assert torch.equal(held_out(torch.tensor([2, 7, 0])), torch.tensor([[True, False], [False, True], [False, False]]))
    empty = ~mention.any(1)
    assert 0.1 < empty.double().mean() < 0.16              # p_uncond, plus the prompts that name nothing


def test_negative_prompt_velocity_is_the_guidance_formula_and_a_short_training_improves():
    train = load_dataset("digits", "train")
    torch.manual_seed(0)
    model = PromptFlow(train.image_shape, 10, hidden=(64, 64))
    history = fit(model, train, epochs=40, seed=0, progress=False)
    losses = history["loss_fm"]
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20
    x, t = torch.randn(5, 64), 0.4
    pos, neg = tokenize("a thick seven").expand(5, -1), tokenize("leaning left").expand(5, -1)
    t_vec = torch.full((5,), t)
    with torch.no_grad():
        v_pos, v_neg = model.v_ema(x, t_vec, pos), model.v_ema(x, t_vec, neg)
        assert torch.allclose(model.velocity(x, t, pos, neg, 2.5), v_neg + 2.5 * (v_pos - v_neg), atol=1e-5)
        assert torch.allclose(model.velocity(x, t, pos, neg, 1.0), v_pos, atol=1e-6)
        assert torch.allclose(model.velocity(x, t, pos, neg, 0.0), v_neg, atol=1e-6)
    images = model.sample(6, "a thick seven", generator=torch.Generator().manual_seed(1), negative="thin",
                          guidance=2.0, steps=5)
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    same = model.sample(6, "a seven", generator=torch.Generator().manual_seed(1), steps=5)
    again = model.sample(6, labels=torch.full((6,), 7), generator=torch.Generator().manual_seed(1), steps=5)
    assert torch.equal(same, again)
    with pytest.raises(CondgenError, match="got 2 prompts for 6 samples"):
        model.sample(6, ["a one", "a two"], steps=2)
    with pytest.raises(CondgenError, match="guidance must be a finite number"):
        model.sample(2, "a one", guidance=-1, steps=2)


def test_correlation_null_separates_a_real_link_from_none():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(50)
    asked = torch.randn(200, generator=g)
    linked = correlation_null(asked, asked + 0.5 * torch.randn(200, generator=g), labels, 500, g)
    unlinked = correlation_null(asked, torch.randn(200, generator=g), labels, 500, g)
    assert linked["r"] > 0.8 and linked["p"] < 0.01 and linked["null_q99"] < 0.25
    assert unlinked["p"] > 0.01 and abs(unlinked["r"]) < unlinked["null_max"] + 1e-9


def test_prompt_explorer_shows_both_rows_and_names_an_unknown_word():
    from condgen_helpers.notebook.widgets import prompt_explorer, render_prompt

    train = load_dataset("digits", "train")
    model = PromptFlow(train.image_shape, 10, hidden=(16,), sample_steps=3)
    model.prepare(train.images, train.labels)
    rows = render_prompt(model, "a one", "thin", 2.0, n=3)
    assert rows.shape == (6, 1, 8, 8) and not torch.equal(rows[:3], rows[3:])
    box = prompt_explorer(model, n=3)
    before = box.images.clone()
    box.children[0].children[0].value = "a bold one"
    assert "unknown word 'bold'" in box.children[3].value and torch.equal(box.images, before)
    box.children[0].children[0].value = "a thin one"
    assert not torch.equal(box.images, before)
