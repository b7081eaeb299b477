"""espeak_asr on the real WordNet glosses and espeak-ng: sentence and speaker split rules, seeded synthesis,
log-mel features, CTC with certain-blank padding, greedy CTC decoding and WER against hand-worked cases."""

import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workloads.espeak_asr import data
from workloads.espeak_asr.model import PADDED_LOGIT, output_frames
from workloads.espeak_asr.workload import EspeakASRWorkload
from workloads.metrics import ctc_greedy_decode, edit_distance, word_error_rate

NOUN_LINES = [
    "  1 This software and database is being provided to you, the LICENSEE, by  \n",
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known or inferred to have its "
    "own distinct existence (living or nonliving)  \n",
    '02084071 05 n 02 dog 0 | a member of the genus Canis; "the dog barked all night"  \n',
    "09917593 18 n 01 child 0 | a young person of either sex; she writes books for children  \n",
    "03000000 06 n 01 x 0 | someone's pet  \n",
    "03000001 06 n 01 y 0 | A Member of the genus Canis!  \n",
]


@pytest.fixture(scope="module")
def raw():
    return data.load()


def test_sentences_from_glosses_by_hand():
    # The entity gloss has too many words, the header is no gloss, "someone's pet" too few words, and the dog and
    # y glosses normalize to one sentence.
    assert data.sentences_from(NOUN_LINES) == ["a member of the genus canis", "a young person of either sex"]
    assert data.normalize("Wood-working (of oak), e.g. 2nd") == "wood working of oak e g nd"


def test_sentence_split_rule_worked_by_hand():
    # crc32 % 10 of each sentence, computed once by hand with zlib: 8 is validation, 9 test, the rest train.
    cases = {s: zlib.crc32(s.encode()) % 10 for s in ("a young person of either sex", "a member of the genus canis")}
    for s, bucket in cases.items():
        assert data.split_of(s) == {8: "validation", 9: "test"}.get(bucket, "train")
    sentences = [f"word number {i} here" for i in range(200)]
    chosen = data.choose_sentences(sentences, {"train": 5, "validation": 3, "test": 2})
    assert [len(v) for v in chosen.values()] == [5, 3, 2]
    assert all(data.split_of(s) == split for split, ss in chosen.items() for s in ss)
    order = sorted(sentences, key=lambda s: zlib.crc32(s.encode()))
    assert chosen["validation"] == [s for s in order if data.split_of(s) == "validation"][:3]


@pytest.mark.integration
def test_real_splits_share_no_sentence_and_no_speaker(raw):
    texts = {
        split: {data.decode_text(row) for row in raw[f"{split}_labels"].astype(int).tolist()}
        for split in ("train", "validation", "test")
    }
    assert not (texts["train"] & texts["validation"]) and not (texts["train"] & texts["test"])
    assert len(texts["validation"]) == len(raw["validation_labels"])  # each sentence once
    voices = {
        split: {data.utterance_settings(split, i)["voice"].split("+")[1] for i in range(100)}
        for split in ("train", "validation", "test")
    }
    assert voices["train"] == set(data.VARIANTS["train"]) and voices["validation"] == {"m4", "f4"}


def test_features_of_the_real_cache(raw):
    n = len(raw["train_features"])
    assert 0.99 * data.SIZES["train"] <= n <= data.SIZES["train"]  # utterances over MAX_FRAMES are dropped
    assert raw["train_features"].shape[1:] == (data.MAX_FRAMES, data.N_MELS)
    assert raw["train_labels"].shape == (n, data.MAX_CHARS) and raw["train_frames"].shape == (n,)
    frames = raw["train_frames"].astype(int)
    assert 40 <= frames.min() and frames.max() <= data.MAX_FRAMES
    real = np.concatenate([f[:k] for f, k in zip(raw["train_features"][:300].astype(np.float32), frames, strict=False)])
    assert abs(real.mean()) < 0.2 and 0.8 < real.std() < 1.2  # standardised with the training statistics
    assert not raw["train_features"][0, frames[0] :].any()  # zero beyond the utterance
    labels = raw["train_labels"].astype(int)
    repeats = ((labels[:, 1:] == labels[:, :-1]) & (labels[:, 1:] != data.BLANK)).sum(1)
    # Every transcript fits the model's output frames, with a blank between repeated letters as CTC needs.
    assert (output_frames(frames) >= (labels != data.BLANK).sum(1) + repeats).all()


def test_mel_filterbank_and_log_mel_shapes():
    fb = data.mel_filterbank()
    assert fb.shape == (data.N_MELS, data.N_FFT // 2 + 1) and (fb >= 0).all()
    assert fb.max(1).values.min() > 0.5  # every filter covers at least one FFT bin near its peak
    assert 2595 * math.log10(1 + 1000 / 700) == pytest.approx(1000.0, abs=0.1)  # HTK: 1 kHz is ~1000 mel
    features = data.log_mel(np.zeros(data.SAMPLE_RATE, np.float32))  # one second of silence
    assert features.shape == (data.SAMPLE_RATE // data.HOP + 1, data.N_MELS)
    assert torch.allclose(features, torch.full_like(features, math.log(1e-6)))


@pytest.mark.integration
def test_seeded_synthesis_is_reproducible():
    a = data.utterance("validation", 3, "a member of the genus canis")
    b = data.utterance("validation", 3, "a member of the genus canis")
    c = data.utterance("validation", 4, "a member of the genus canis")
    assert torch.equal(a, b) and a.shape[1] == data.N_MELS
    assert data.utterance_settings("validation", 3) != data.utterance_settings("validation", 4)
    assert a.shape != c.shape or not torch.equal(a, c)


def test_wer_fixed_points_and_a_hand_worked_case():
    refs = ["a member of the genus canis", "a young person of either sex"]
    assert word_error_rate(refs, refs) == 0.0
    assert word_error_rate(["", ""], refs) == 1.0
    # "the bat sat" against "the cat sat down": one substitution and one deletion in four words.
    assert word_error_rate(["the bat sat"], ["the cat sat down"]) == 0.5
    assert edit_distance(list("kitten"), list("sitting")) == 3


def test_ctc_greedy_decoding_of_a_hand_made_path():
    a, b, c = 3, 4, 5
    path = [a, a, 0, a, b, b, 0, 0, c, c]
    logits = F.one_hot(torch.tensor([path, [0] * 10]), 8).float()
    assert ctc_greedy_decode(logits) == [[a, a, b, c], []]
    assert data.decode_text(data.encode_text("it's a dog")) == "it's a dog"


def test_ctc_loss_of_certain_blank_padding_equals_ctc_of_the_real_frames():
    torch.manual_seed(0)
    workload = EspeakASRWorkload()
    logits = torch.randn(2, 12, len(data.ALPHABET) + 1)
    labels = torch.tensor([[3, 3, 4, 0], [5, 0, 0, 0]])
    padded = logits.clone()
    padded[0, 8:] = PADDED_LOGIT
    padded[0, 8:, 0] = 0.0
    got = workload.loss_fn(labels, padded)
    log_probs = F.log_softmax(logits, -1).transpose(0, 1)
    want = F.ctc_loss(log_probs, labels, torch.tensor([8, 12]), torch.tensor([3, 1]), reduction="none")
    torch.testing.assert_close(got["per_example"], want)
    assert got["n_valid_examples"].item() == 4
    # Uniform logits over C symbols, two frames, one label: three of C^2 paths give it.
    c = len(data.ALPHABET) + 1
    one = workload.loss_fn(torch.tensor([[7]]), torch.zeros(1, 2, c))["summed"].item()
    assert one == pytest.approx(2 * math.log(c) - math.log(3), rel=1e-5)


def test_kronecker_factor_shapes_are_reasonable():
    """What a Kronecker submission (max_preconditioner_dim 1024) preconditions: convolutions as matrices of
    output channels by input channels x taps, every factor at most 1024 wide; batch norm, layer norm and biases
    go to the diagonal method."""
    from compat import prng
    from precond import blocking
    from submissions import glue

    workload = EspeakASRWorkload()
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    groups, adam = glue.route_parameters(model, workload.model_params_types)
    shapes = {n: blocking.plan(tuple(p.shape), 1024).merged_shape for n, p in groups[0]["params"]}
    assert not adam and max(max(s) for s in shapes.values()) <= 1024
    assert shapes["frontend.weight"] == (96, 200) and shapes["conv_modules.0.depthwise.weight"] == (96, 15)
    assert shapes["conv_modules.0.pointwise_in.weight"] == (192, 96) and shapes["head.weight"] == (29, 96)
    assert not any(n.endswith(".bias") or "norm" in n for n in shapes)
