"""Synthesised speech for ``espeak_asr``: short WordNet noun glosses (Debian wordnet-base) spoken by espeak-ng
(Debian espeak-ng) in several accents and voices at random speeds and pitches, with white noise, as log-mel
features; the transcripts are character sequences.

Sentences: the definition of each noun synset (the gloss up to its first ';' or '"'), lower-cased, every
character other than a-z and "'" made a space, kept when it has 3-6 words and at most ``MAX_CHARS`` characters;
duplicates dropped. A sentence belongs to one split by the CRC32 of its text (mod 10: 8 validation, 9 test, the
rest train), so a validation sentence is never heard in training; each split takes its first sentences in CRC32
order. Speakers: every accent of ``ACCENTS`` with a voice variant; the variants of each split are disjoint
(``VARIANTS``), so validation and test speakers are unheard too. Utterance i of a split draws its speaker, speed
(words per minute), pitch and signal-to-noise ratio from a numpy generator seeded with (``SEED``, split, i).

Features (torchaudio is not available for this torch): the 22.05 kHz waveform plus noise, a 25 ms Hann window
every 20 ms (1024-point FFT), power spectrum, ``N_MELS`` triangular filters evenly spaced on the HTK mel scale
(2595 log10(1 + f / 700)) from 0 to 8 kHz, log(mel + 1e-6), then each band standardised with the training
split's mean and standard deviation. Frames beyond an utterance's length are zero.

Synthesis runs once (``make data`` or the first load) and is cached keyed by its inputs; a trial only loads it.
"""

import io
import shutil
import subprocess
import wave
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch

from workloads.cache import cached_arrays
from workloads.registry import WorkloadError

GLOSSES = "/usr/share/wordnet/data.noun"
HOW_TO = "run `make data` (installs espeak-ng and wordnet-base)"
ALPHABET = " '" + "abcdefghijklmnopqrstuvwxyz"  # symbol k is ALPHABET[k - 1]; 0 is the CTC blank
BLANK = 0
MAX_CHARS = 40
MAX_FRAMES = 160
SAMPLE_RATE = 22_050
N_FFT, WINDOW, HOP, N_MELS = 1024, 551, 441, 40
SEED = 20
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = {"train": ("m1", "m2", "m3", "f1", "f2", "f3"), "validation": ("m4", "f4"), "test": ("m5", "f5")}
SIZES = {"train": 6000, "validation": 250, "test": 250}
SPLIT_OF_BUCKET = {8: "validation", 9: "test"}
SPEED_WPM, PITCH, SNR_DB = (140, 200), (25, 75), (10.0, 30.0)


def normalize(gloss: str) -> str:
    """Lower case, characters outside the alphabet made spaces, whitespace collapsed."""
    text = "".join(c if c in ALPHABET else " " for c in gloss.lower())
    return " ".join(text.split())


def sentences_from(lines) -> list[str]:
    """Distinct normalized noun definitions of 3-6 words and at most MAX_CHARS characters, sorted."""
    out = set()
    for line in lines:
        if line.startswith("  ") or "|" not in line:  # the license header
            continue
        definition = line.split("|", 1)[1].split(";")[0].split('"')[0]
        text = normalize(definition)
        if 3 <= len(text.split()) <= 6 and len(text) <= MAX_CHARS:
            out.add(text)
    return sorted(out)


def split_of(sentence: str) -> str:
    return SPLIT_OF_BUCKET.get(zlib.crc32(sentence.encode()) % 10, "train")


def choose_sentences(sentences: list[str], sizes: dict[str, int]) -> dict[str, list[str]]:
    """Each split's first ``sizes[split]`` sentences in CRC32 order."""
    out: dict[str, list[str]] = {name: [] for name in sizes}
    for s in sorted(sentences, key=lambda s: (zlib.crc32(s.encode()), s)):
        split = split_of(s)
        if len(out[split]) < sizes[split]:
            out[split].append(s)
    return out


def encode_text(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text]


def decode_text(symbols) -> str:
    return "".join(ALPHABET[k - 1] for k in symbols if k != BLANK)


def utterance_settings(split: str, i: int) -> dict:
    """The speaker, speed, pitch and SNR of utterance ``i`` of ``split`` (seeded)."""
    rng = np.random.default_rng([SEED, list(VARIANTS).index(split), i])
    return {
        "voice": f"{ACCENTS[rng.integers(len(ACCENTS))]}+{rng.choice(VARIANTS[split])}",
        "speed": int(rng.integers(*SPEED_WPM)),
        "pitch": int(rng.integers(*PITCH)),
        "snr_db": float(rng.uniform(*SNR_DB)),
        "noise_seed": int(rng.integers(2**31)),
    }


def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise WorkloadError(f"espeak-ng not found; {HOW_TO}")
    return exe


def synthesize(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's float32 waveform in [-1, 1) at SAMPLE_RATE."""
    cmd = [espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    with wave.open(io.BytesIO(proc.stdout)) as w:
        if w.getframerate() != SAMPLE_RATE or w.getsampwidth() != 2:
            got = f"{w.getframerate()} Hz, {8 * w.getsampwidth()}-bit"
            raise WorkloadError(f"espeak-ng wrote {got} audio, not 16-bit {SAMPLE_RATE} Hz; reinstall espeak-ng")
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


def add_noise(waveform: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` below the waveform's mean power."""
    power = float(np.mean(waveform**2)) or 1e-12
    noise = np.random.default_rng(seed).standard_normal(len(waveform)).astype(np.float32)
    return waveform + noise * np.float32(np.sqrt(power / 10 ** (snr_db / 10)))


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, f_max: float = 8000.0):
    """(n_mels, n_fft // 2 + 1) triangular filters with peaks evenly spaced on the HTK mel scale over [0, f_max]."""
    mel = lambda f: 2595.0 * torch.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(torch.linspace(0.0, float(mel(torch.tensor(f_max))), n_mels + 2, dtype=torch.float64))
    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (center - lower)
    falling = (upper - bins) / (upper - center)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def log_mel(waveform: np.ndarray) -> torch.Tensor:
    """(frames, N_MELS) log-mel features of a waveform: frame t is centred on sample t * HOP."""
    window = torch.hann_window(WINDOW)
    spec = torch.stft(torch.from_numpy(waveform), N_FFT, HOP, WINDOW, window, center=True, return_complex=True)
    power = spec.abs() ** 2  # (freq, frames)
    return torch.log(mel_filterbank() @ power + 1e-6).T


def utterance(split: str, i: int, text: str) -> torch.Tensor:
    s = utterance_settings(split, i)
    waveform = synthesize(text, s["voice"], s["speed"], s["pitch"])
    return log_mel(add_noise(waveform, s["snr_db"], s["noise_seed"]))


def load() -> dict[str, np.ndarray]:
    """'<split>_features' (N, MAX_FRAMES, N_MELS) float16, '<split>_frames' (N,), '<split>_labels'
    (N, MAX_CHARS) int8 padded with BLANK."""
    try:
        with open(GLOSSES, "rb") as f:
            glosses_crc = zlib.crc32(f.read())
    except FileNotFoundError:
        raise WorkloadError(f"WordNet glosses {GLOSSES} not found; {HOW_TO}") from None
    version = subprocess.run([espeak(), "--version"], capture_output=True, text=True).stdout.split("Data")[0]
    key = f"{glosses_crc:08x}-{zlib.crc32(version.encode()):08x}-{'-'.join(map(str, SIZES.values()))}"
    return cached_arrays("espeak_asr", key, _build, __file__)


def _build(workers: int = 2) -> dict[str, np.ndarray]:
    with open(GLOSSES, encoding="utf-8") as f:
        chosen = choose_sentences(sentences_from(f), SIZES)
    out = {}
    with ThreadPoolExecutor(workers) as pool:
        for split, texts in chosen.items():
            feats = list(pool.map(partial(utterance, split), range(len(texts)), texts))
            keep = [i for i, f in enumerate(feats) if len(f) <= MAX_FRAMES]
            features = np.zeros((len(keep), MAX_FRAMES, N_MELS), np.float32)
            labels = np.zeros((len(keep), MAX_CHARS), np.int8)
            for row, i in enumerate(keep):
                features[row, : len(feats[i])] = feats[i].numpy()
                labels[row, : len(texts[i])] = encode_text(texts[i])
            out[f"{split}_features"], out[f"{split}_labels"] = features, labels
            out[f"{split}_frames"] = np.array([len(feats[i]) for i in keep], np.int16)
    _standardize(out)
    return {k: v.astype(np.float16) if k.endswith("_features") else v for k, v in out.items()}


def _standardize(out: dict[str, np.ndarray]) -> None:
    """Each mel band to zero mean and unit variance over the training split's real frames (in place)."""
    frames = out["train_frames"]
    real = np.concatenate([f[:n] for f, n in zip(out["train_features"], frames, strict=True)])
    mean, std = real.mean(0), real.std(0) + 1e-5
    for split in SIZES:
        for f, n in zip(out[f"{split}_features"], out[f"{split}_frames"], strict=True):
            f[:n] = (f[:n] - mean) / std
