"""bible_mt on the real SWORD modules: markup cleaning, the whole-book split rule worked by hand, the cached
shared vocabulary, BLEU's fixed points, and the encoder-decoder's masking and incremental decoding."""

import random

import pytest
import torch

from compat import prng
from workloads.bible_mt import data
from workloads.bible_mt.workload import MAX_LEN, BibleMTWorkload, corpus_bleu

GENESIS_1_1_OSIS = (
    '<w lemma="strong:H0430">In</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H7225">beginning</w>, '
    '<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">1:1 </reference>The '
    'Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note><w lemma="strong:H1254">created</w> '
    '<w lemma="strong:H0853">the</w> <w lemma="strong:H8064">heavens</w> and the earth.'
)


@pytest.fixture(scope="module")
def modules():
    return data.parse_imp(data.export(data.SOURCE_MODULE)), data.parse_imp(data.export(data.TARGET_MODULE))


@pytest.fixture(scope="module")
def workload():
    return BibleMTWorkload()


def test_clean_drops_notes_and_titles_and_keeps_words_apart():
    assert data.clean(GENESIS_1_1_OSIS) == "In the beginning, God created the heavens and the earth."
    assert data.clean('<title>A Psalm.</title><l>Yahweh,</l><l level="2">my rock</l> &amp; <lb/>shield !') == (
        "Yahweh, my rock & shield!"
    )


@pytest.mark.integration
def test_real_verses_are_parsed_and_paired(modules):
    english, spanish = modules
    assert english["Genesis", 1, 1] == "In the beginning, God created the heavens and the earth."
    assert spanish["Genesis", 1, 1] == "EN el principio crió Dios los cielos y la tierra."
    assert spanish["John", 3, 16].startswith("Porque de tal manera amó Dios al mundo, que ha dado á su Hijo")
    assert not any(k[1] == 0 or k[2] == 0 for k in english)  # introductions are not verses


def test_whole_books_go_to_one_split_by_canonical_position(modules):
    # Genesis 0, Exodus 1, Leviticus 2, Numbers 3, Deuteronomy 4, ..., I Samuel 8, II Samuel 9, I Kings 10,
    # II Kings 11, I Chronicles 12, II Chronicles 13, Ezra 14; Matthew is 39 and Mark 40.
    assert [data.split_of_book(i) for i in (0, 3, 4, 8, 9, 13, 14, 39, 40)] == [
        "train", "train", "validation", "train", "test", "train", "validation", "test", "train",
    ]  # fmt: skip
    english, spanish = modules
    splits = data.book_splits(english, spanish)
    assert len(splits) == 66 and "Tobit" in {k[0] for k in english} and "Tobit" not in splits  # WEB-only books
    expected = {"Genesis": "train", "Deuteronomy": "validation", "II Samuel": "test", "Ezra": "validation"}
    assert {b: splits[b] for b in expected} == expected
    assert splits["Matthew"] == "test" and splits["Mark"] == "train" and splits["Revelation of John"] == "train"
    pairs = data.verse_pairs(english, spanish)
    for key, split in [(("Genesis", 1, 1), "train"), (("Deuteronomy", 34, 12), "validation")]:
        assert (english[key], spanish[key]) in pairs[split]
    assert sum(map(len, pairs.values())) == sum(k in spanish for k in english if k[0] in splits)


def test_verse_pairs_on_hand_made_modules():
    source = {(b, 1, v): f"{b}{v}" for b in "ABCDEFGHIJK" for v in (1, 2)}
    target = {k: t.lower() for k, t in source.items() if k[0] != "B"}  # book B missing in the target
    pairs = data.verse_pairs(source, target)
    # Shared books in order: A0 C1 D2 E3 F4 G5 H6 I7 J8 K9.
    assert pairs["validation"] == [("F1", "f1"), ("F2", "f2")] and pairs["test"] == [("K1", "k1"), ("K2", "k2")]
    assert len(pairs["train"]) == 16


def test_cached_vocabulary_round_trips_real_verses(workload):
    sp = workload.tokenizer()
    assert sp.get_piece_size() == data.VOCAB and sp.pad_id() == data.PAD and sp.eos_id() == data.EOS
    split = workload.split_arrays("validation", "")
    texts = workload.detokenize(split["targets"][:50].long())
    assert all(sp.decode(sp.encode(t)) == t for t in texts)
    ids = torch.tensor(data.encode(sp, ["In the beginning, God created the heavens and the earth."], MAX_LEN)[0])
    assert workload.detokenize(ids.long()) == ["In the beginning, God created the heavens and the earth."]
    for name in ("train", "validation", "test"):  # every sequence ends in EOS and is PAD after it
        t = workload.split_arrays(name, "")["targets"].long()
        eos = (t == data.EOS).int().argmax(1)
        assert ((t == data.EOS).sum(1) == 1).all()
        assert (t[torch.arange(MAX_LEN)[None] > eos[:, None]] == data.PAD).all()


@pytest.mark.integration
def test_bleu_of_references_is_100_and_of_shuffled_outputs_below_5(workload):
    references = workload.detokenize(workload.split_arrays("validation", "")["targets"][:500].long())
    assert corpus_bleu(references, references) == pytest.approx(100.0)
    shuffled = references[:]
    random.Random(0).shuffle(shuffled)
    assert corpus_bleu(shuffled, references) < 5.0


def test_loss_is_per_real_token(workload):
    labels = torch.tensor([[7, 9, data.EOS, data.PAD, data.PAD]])
    out = workload.loss_fn(labels, torch.zeros(1, 5, data.VOCAB))
    assert out["n_valid_examples"].item() == 3
    assert out["summed"].item() == pytest.approx(3 * torch.log(torch.tensor(float(data.VOCAB))).item(), rel=1e-6)


@pytest.mark.integration
def test_padding_is_invisible_and_greedy_decoding_matches_teacher_forcing(workload):
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    model.eval()
    batch = workload.make_batch(workload.split_arrays("validation", ""), torch.arange(8))
    before = model(batch["inputs"])
    with torch.no_grad():
        model.token_embedding.weight[data.PAD] += 5.0  # what PAD source tokens look like must not matter...
    after = model(batch["inputs"])
    real = batch["targets"] != data.PAD
    torch.testing.assert_close(before[real], after[real])  # ...to the outputs at real target positions
    decoded = model.greedy(batch["inputs"]["source"], MAX_LEN)
    target_in = torch.cat([torch.full_like(decoded[:, :1], data.BOS), decoded[:, :-1]], dim=1)
    forced = model({"source": batch["inputs"]["source"], "target_in": target_in}).argmax(-1)
    emitted = torch.cumsum((decoded == data.EOS).int(), 1) - (decoded == data.EOS).int() == 0
    assert torch.equal(forced[emitted], decoded[emitted])  # the cached path picks what the full pass would


def test_kronecker_factor_shapes_are_reasonable(workload):
    """What a Kronecker submission (max_preconditioner_dim 1024) would precondition: every factor at most 1024
    wide; the 2000-row tables (token embedding, output layer) split into row blocks of 1024 and 976. Which of
    them the glue preconditions is its parameter-type policy (embeddings may go to the diagonal method); biases
    and norms never are."""
    from precond import blocking
    from submissions import glue

    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    groups, _ = glue.route_parameters(model, workload.model_params_types)
    matrices = {n: p for n, p in model.named_parameters() if p.dim() > 1}
    shapes = {n: [b.shape for b in blocking.plan(tuple(p.shape), 1024).blocks] for n, p in matrices.items()}
    assert max(max(s) for blocks in shapes.values() for s in blocks) <= 1024
    assert shapes["token_embedding.weight"] == shapes["head.weight"] == [(1024, 96), (976, 96)]
    assert shapes["decoder.0.cross_attention.kv.weight"] == [(192, 96)] and shapes["pos_embedding"] == [(32, 96)]
    preconditioned = {n for g in groups if g.get("precondition", True) for n, _ in g["params"]}
    assert not any(n.endswith(".bias") or "norm" in n for n in preconditioned)  # the diagonal method
    assert {n for n in preconditioned if "embedding" not in n} == {n for n in matrices if "embedding" not in n}
