"""BoW: the histogram of a hand-made feature map over a hand-made vocabulary, k-means, the
teacher (loaded, frozen, one-line errors) and the vocabulary built once at the first step."""

from __future__ import annotations

import math

import pytest
import torch

from kit import train_step, views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.methods.bow import BoW
from ssltrain.pretext.visual_words import bow_histogram, kmeans


def test_the_histogram_soft_assigns_each_position_and_averages_them():
    vocabulary = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    feature_map = torch.tensor([[1.0, 0.0], [0.0, 3.0]]).T.reshape(1, 2, 1, 2)  # positions (1, 0) and (0, 3)
    # squared distances: (1, 0) -> 1, 1, 5; (0, 3) -> 9, 13, 1; nearest: 1 and 1, delta = 1 / 2
    delta = 1 / 2
    first = [math.exp(-d / delta) for d in (1, 1, 5)]
    second = [math.exp(-d / delta) for d in (9, 13, 1)]
    expected = [(a / sum(first) + b / sum(second)) / 2 for a, b in zip(first, second)]
    histogram = bow_histogram(feature_map, vocabulary, inverse_delta=2.0)
    assert histogram.shape == (1, 3)
    torch.testing.assert_close(histogram[0], torch.tensor(expected), rtol=1e-5, atol=1e-7)


def test_kmeans_finds_two_separated_clusters():
    generator = torch.Generator().manual_seed(0)
    vectors = torch.cat([torch.randn(50, 2, generator=generator) * 0.1, 10 + torch.randn(50, 2, generator=generator) * 0.1])
    centres = kmeans(vectors, 2, iterations=5, generator=torch.Generator().manual_seed(1))
    centres = centres[centres[:, 0].argsort()]
    torch.testing.assert_close(centres, torch.stack([vectors[:50].mean(0), vectors[50:].mean(0)]))


def _encoder():
    torch.manual_seed(0)
    return small_cnn(channels=(8, 16))


def test_a_missing_or_unfit_teacher_fails_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"method.teacher=\S+nothing does not exist"):
        BoW(_encoder(), teacher=str(tmp_path / "nothing"))
    torch.save(small_cnn(channels=(4, 8)).state_dict(), tmp_path / "backbone.pt")
    with pytest.raises(UserError, match="do not fit the configured encoder") as error:
        BoW(_encoder(), teacher=str(tmp_path))
    assert "\n" not in str(error.value)


def test_the_teacher_is_loaded_frozen_and_the_vocabulary_is_built_once(tmp_path):
    trained = small_cnn(channels=(8, 16))
    torch.save(trained.state_dict(), tmp_path / "backbone.pt")
    method = BoW(_encoder(), teacher=str(tmp_path / "backbone.pt"), num_words=8)
    assert all(torch.equal(a, b) for a, b in zip(method.teacher.state_dict().values(), trained.state_dict().values()))
    assert not any(p.requires_grad for p in method.teacher.parameters())
    train_step(method, views_batch([16, 16], batch=4))
    vocabulary = method.vocabulary.clone()
    assert bool(method.vocabulary_ready) and vocabulary.abs().sum() > 0
    train_step(method, views_batch([16, 16], batch=4, seed=2), step=1)
    assert torch.equal(method.vocabulary, vocabulary), "built once"
    assert all(torch.equal(a, b) for a, b in zip(method.teacher.state_dict().values(), trained.state_dict().values()))
    assert not method.teacher.training


def test_too_many_words_for_the_first_batch_names_the_keys():
    method = BoW(_encoder(), num_words=1000)
    with pytest.raises(UserError, match="lower method.num_words or raise trainer.batch_size"):
        train_step(method, views_batch([16, 16], batch=4))
