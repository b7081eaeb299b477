"""English -> Spanish verse pairs from two Debian SWORD Bibles: the World English Bible (``engWEB2015eb``,
package sword-text-web) and the Reina-Valera 1909 (``spaRV1909eb``, package sword-text-sparv), exported by
``mod2imp`` (package libsword-utils).

A pair is one verse present, non-empty, in both modules. Markup is removed: footnotes and headings with their
text, every other tag kept as its text (block tags as a space). Whole books go to one split by their position
in the WEB's canonical order among the books both modules share (Genesis = 0, ..., Revelation = 65):
position mod 10 == 4 is validation, == 9 is test, the rest train, so no verse of a chapter is in two splits.

A unigram sentencepiece model of ``VOCAB`` pieces shared by both languages is trained on the training split only
and cached with the token arrays (its bytes are an array of the same .npz), so it is built once. Sequences are
pieces + EOS, padded with PAD to ``max_len``; pairs longer than that on either side are dropped.
"""

import html
import os
import re
import shutil
import subprocess
import zlib

import numpy as np

from workloads.cache import cached_arrays
from workloads.registry import WorkloadError

SOURCE_MODULE, TARGET_MODULE = "engWEB2015eb", "spaRV1909eb"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
VOCAB = 2000
MAX_LEN = 32
SPLIT_OF_POSITION = {4: "validation", 9: "test"}
HOW_TO = "run `make data` (installs sword-text-web, sword-text-sparv and libsword-utils)"

_DROPPED = re.compile(r"<(note|title)\b[^>]*>.*?</\1>|<(note|title)\b[^>]*/>", re.S)
_BLOCK = re.compile(r"</?(div|l|lb|lg|item|list|milestone|chapter|p)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)\]»”’])")
_KEY = re.compile(r"^\$\$\$(.+) (\d+):(\d+)$")


def clean(osis: str) -> str:
    """Plain text of one verse's OSIS markup."""
    text = _TAG.sub("", _BLOCK.sub(" ", _DROPPED.sub(" ", osis)))
    text = html.unescape(" ".join(text.split()))
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)


def parse_imp(imp: str) -> dict[tuple[str, int, int], str]:
    """(book, chapter, verse) -> cleaned text from ``mod2imp`` output, in module order; chapter/book
    introductions (chapter or verse 0) and empty verses are skipped."""
    verses, key, lines = {}, None, []

    def flush():
        if key is not None and key[1] > 0 and key[2] > 0:
            text = clean(" ".join(lines))
            if text:
                verses[key] = text

    for line in imp.splitlines():
        if line.startswith("$$$"):
            flush()
            m = _KEY.match(line)
            key, lines = ((m[1], int(m[2]), int(m[3])) if m else None), []
        else:
            lines.append(line)
    flush()
    return verses


def export(module: str) -> str:
    exe = shutil.which("mod2imp")
    if exe is None:
        raise WorkloadError(f"mod2imp not found; {HOW_TO}")
    proc = subprocess.run([exe, module], capture_output=True, text=True)
    if proc.returncode != 0 or "Couldn't find module" in proc.stdout + proc.stderr:
        raise WorkloadError(f"SWORD module {module} not found; {HOW_TO}")
    return proc.stdout


def split_of_book(position: int) -> str:
    return SPLIT_OF_POSITION.get(position % 10, "train")


def book_splits(source: dict, target: dict) -> dict[str, str]:
    """The split of every book both modules have, by its position among them in the source's order."""
    target_books = {k[0] for k in target}
    shared = [b for b in dict.fromkeys(k[0] for k in source) if b in target_books]
    return {book: split_of_book(i) for i, book in enumerate(shared)}


def verse_pairs(source: dict, target: dict) -> dict[str, list[tuple[str, str]]]:
    """Verse pairs per split, books whole (see the module docstring for the rule)."""
    split = book_splits(source, target)
    out: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    for key, text in source.items():
        if key[0] in split and key in target:
            out[split[key[0]]].append((text, target[key]))
    return out


def train_tokenizer(sentences: list[str], vocab: int = VOCAB) -> bytes:
    """A serialized unigram sentencepiece model (deterministic for the same sentences)."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=PAD,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def tokenizer(model_bytes: bytes):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=bytes(model_bytes))


def encode(sp, texts: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, max_len) int16 ids (pieces + EOS, PAD after) and a bool array of which texts fit."""
    ids = sp.encode(texts)
    out = np.full((len(texts), max_len), PAD, np.int16)
    fits = np.array([len(x) < max_len for x in ids])
    for i, x in enumerate(ids):
        if fits[i]:
            out[i, : len(x) + 1] = x + [EOS]
    return out, fits


def load(max_len: int = MAX_LEN) -> dict[str, np.ndarray]:
    """'<split>_source', '<split>_target' (int16 ids) and 'tokenizer' (the sentencepiece model's bytes)."""
    conf = [f"/usr/share/sword/mods.d/{m}.conf" for m in (SOURCE_MODULE, TARGET_MODULE)]
    stamp = "-".join(f"{zlib.crc32(open(c, 'rb').read()):08x}" for c in conf if os.path.isfile(c))
    key = f"{stamp or 'nostamp'}-V{VOCAB}-L{max_len}"
    return cached_arrays("bible_mt", key, lambda: _build(max_len), __file__)


def _build(max_len: int) -> dict[str, np.ndarray]:
    pairs = verse_pairs(parse_imp(export(SOURCE_MODULE)), parse_imp(export(TARGET_MODULE)))
    model = train_tokenizer([t for pair in pairs["train"] for t in pair])
    sp = tokenizer(model)
    out = {"tokenizer": np.frombuffer(model, np.uint8).copy()}
    for name, split in pairs.items():
        source, source_fits = encode(sp, [s for s, _ in split], max_len)
        target, target_fits = encode(sp, [t for _, t in split], max_len)
        keep = source_fits & target_fits
        out[f"{name}_source"], out[f"{name}_target"] = source[keep], target[keep]
    return out
