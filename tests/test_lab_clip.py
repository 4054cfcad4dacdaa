"""Chapter 4's machinery: captioned cue-world data, the lab text tower, and zero-shot heads from any text encoder."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from vitlessons import zoo
from vitlessons.data import cueworld
from vitlessons.data.sources import CaptionedStream, CueWorldStream
from vitlessons.models import Preprocessing, lab
from vitlessons.models.clip import LabClip, zero_shot_classifier
from vitlessons.models.text import CONTEXT_LENGTH, Tokenizer, lab_text
from vitlessons.train import Recipe

WORDS = ("circle", "square", "star")


class WordSpotter(nn.Module):
    """A CLIP-like model that gives known answers: a text is the multi-hot of the WORDS it contains (in token ids) plus
    a small fixed offset, an image the one-hot of its brightest channel."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer = Tokenizer()
        self.word_tokens = [int(self.tokenizer(word)[0, 1]) for word in WORDS]  # each word is one token after <start>
        self.register_buffer("logit_scale", torch.tensor(100.0).log())
        self.offset = nn.Parameter(torch.full((3,), 0.01), requires_grad=False)

    def encode_text(self, tokens: Tensor, normalize: bool = False) -> Tensor:
        hits = torch.stack([(tokens == t).any(-1) for t in self.word_tokens], dim=-1).float()
        return nn.functional.normalize(hits + self.offset, dim=-1) if normalize else hits + self.offset

    def encode_image(self, images: Tensor, normalize: bool = False) -> Tensor:
        brightest = nn.functional.one_hot(images.mean((-2, -1)).argmax(-1), 3).float()
        return nn.functional.normalize(brightest, dim=-1) if normalize else brightest


def test_the_tokenizer_fits_every_caption_and_names_itself() -> None:
    captions = [cueworld.caption(t, s, x) for t in cueworld.CAPTION_TEMPLATES for s in range(6) for x in range(6)]
    tokens = Tokenizer()(captions)
    assert tokens.shape == (len(captions), CONTEXT_LENGTH)
    assert bool((tokens[:, -1] == 0).all())  # room to spare: no caption is cut
    assert len({tuple(row.tolist()) for row in tokens}) == len(set(captions))
    assert repr(Tokenizer()) == "Tokenizer(model='ViT-B-32', context_length=16)"  # stable across processes: a cache key


def test_captioned_batches_name_their_images_and_repeat_exactly() -> None:
    stream = CaptionedStream(CueWorldStream("conflict", images=40, seed=3), Tokenizer())
    images, tokens = next(stream.batches(0, 40, seed=0))
    drawn = next(stream.images.draws(0, 40))
    assert torch.equal(images, drawn.images)
    tokenizer = Tokenizer()
    possible = [tokenizer([cueworld.caption(t, s, x) for t in cueworld.CAPTION_TEMPLATES])
                for s, x in zip(drawn.shapes.tolist(), drawn.textures.tolist())]
    assert all(any(torch.equal(row, option) for option in options) for row, options in zip(tokens, possible))
    assert len({tuple(row.tolist()) for row in tokens}) > 20  # templates vary within a batch
    again = next(CaptionedStream(CueWorldStream("conflict", images=40, seed=3), Tokenizer()).batches(0, 40, seed=0))
    assert torch.equal(again[1], tokens)
    with pytest.raises(ValueError, match="lacks one of them"):
        CaptionedStream(CueWorldStream("silhouette", images=4), Tokenizer())
    with pytest.raises(ValueError, match="memory address"):  # it would change the cache key in every process
        CaptionedStream(CueWorldStream("conflict", images=4), lambda captions: Tokenizer()(captions))


def test_the_zero_shot_head_gives_the_known_answers() -> None:
    spotter = WordSpotter()
    images = torch.zeros(3, 3, 8, 8)
    for channel in range(3):
        images[channel, channel] = 1.0  # red, green, blue: the spotter's circle, square, star
    identity = Preprocessing(size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resize=False)
    templates = ["a photo of a {}", "a {} and a star and a circle"]  # prompts that differ in length and direction
    head = zero_shot_classifier("spotter", spotter, spotter.tokenizer, ["star", "circle", "square"], templates, identity)
    assert head.labels == ["star", "circle", "square"]
    assert head(images).argmax(-1).tolist() == [1, 2, 0]
    for column, word in enumerate(head.labels):  # by hand: normalise each prompt, average, normalise again
        prompts = spotter.encode_text(spotter.tokenizer([t.format(word) for t in templates]))
        expected = nn.functional.normalize(nn.functional.normalize(prompts, dim=-1).mean(0), dim=0)
        assert torch.allclose(head.net.class_weights[:, column], expected, atol=1e-6)
    unnormalised = nn.functional.normalize(prompts.mean(0), dim=0)
    assert not torch.allclose(head.net.class_weights[:, 2], unnormalised, atol=1e-3)  # the order of the steps shows
    logits = head(images)
    assert torch.allclose(logits, 100 * nn.functional.one_hot(torch.arange(3), 3).float() @ head.net.class_weights, atol=1e-4)


@pytest.fixture
def tiny_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real code path with a recipe small enough for a unit test."""
    monkeypatch.setitem(lab.RECIPES, "lab_vit", Recipe(epochs=2, batch_size=16))
    monkeypatch.setitem(lab.IMAGES_PER_EPOCH, "lab_vit", 32)
    monkeypatch.setattr(zoo, "CLIP_VALIDATION", 16)


def test_the_lab_clip_is_trained_once_and_classifies_any_label_set(tiny_clip: None) -> None:
    first, objective = zoo.clip_model(device="cpu", progress=False)
    again, restored = zoo.clip_model(device="cpu", progress=False)
    assert not first.loaded and again.loaded
    assert torch.equal(objective.text.token_embedding.weight, restored.text.token_embedding.weight)
    assert again.history["images seen"] == [32.0, 64.0] and len(again.history["validation caption accuracy"]) == 2
    clip = LabClip(again.model, restored)
    assert float(clip.logit_scale.exp()) == pytest.approx(float(restored.logit_scale().detach()))
    images = cueworld.make_split("conflict", 5, seed=9).images
    expected = restored.encode_image(again.model, images)  # the objective's own path, preprocessing included
    assert torch.allclose(clip.encode_image(again.model.preprocessing(images)), expected, atol=1e-5)
    for names in (cueworld.SHAPES, cueworld.TEXTURE_ADJECTIVES):
        head = zero_shot_classifier("lab_clip", clip, Tokenizer(), names, ["a photo of a {}"], again.model.preprocessing)
        assert head(images).shape == (5, 6)


def test_the_text_tower_is_seeded() -> None:
    assert torch.equal(lab_text(seed=1).token_embedding.weight, lab_text(seed=1).token_embedding.weight)
    assert not torch.equal(lab_text(seed=1).token_embedding.weight, lab_text(seed=2).token_embedding.weight)
