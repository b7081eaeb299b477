"""``bible_mt``: the WMT family on this CPU, English -> Spanish translation of Bible verses (World English Bible
-> Reina-Valera 1909) by a small encoder-decoder Transformer (width 128, 2 + 2 layers, a shared 2000-piece
sentencepiece vocabulary, verses of < 32 pieces); the target is validation BLEU (sacrebleu's corpus BLEU) of
greedy decodes, as AlgoPerf's WMT.

Calibration (README "Workload calibration"; measured under load ~11-14 on the 2 cores, so in steps): NAdamW's first
search-space point reaches BLEU 5 in 450 / 500 / 500 steps over seeds 0-2 (median 500); its ms/step is 3.1x
stdlib_lm's in an interleaved timing, ~190 ms/step at batch 64 on a quiet machine, so ~95 s: over the suite's
60 s ceiling. Budget 3x that (280 s), step_hint the baseline's steps within it (1500; run at 1350).
"""

import torch

from algoperf import spec
from workloads import ddp
from workloads.base import SPLITS, InMemoryWorkload
from workloads.bible_mt import data
from workloads.bible_mt.model import Translator
from workloads.losses import softmax_cross_entropy

MAX_LEN = data.MAX_LEN


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacrebleu's corpus BLEU (13a tokenization, exponential smoothing) of one reference per hypothesis."""
    import sacrebleu

    return sacrebleu.corpus_bleu(hypotheses, [references]).score


def trim(ids: torch.Tensor) -> torch.Tensor:
    """(batch, length) ids without the trailing columns that are PAD in every row (at least one column kept)."""
    used = (ids != data.PAD).any(0).nonzero()
    return ids[:, : int(used.max()) + 1 if len(used) else 1]


class BibleMTWorkload(InMemoryWorkload):
    validation_target_value = 5.0
    test_target_value = 4.5
    num_eval_train_examples = 250
    num_validation_examples = 500
    num_test_examples = 500
    eval_batch_size = 250
    train_mean = 0.0
    train_stddev = 1.0
    max_allowed_runtime_sec = 280
    eval_period_time_sec = 10
    step_hint = 1500
    output_param_prefixes = ("head.",)

    target_metric_name = "bleu"
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY

    def __init__(self):
        super().__init__()
        self._tokenizer = None

    @property
    def num_train_examples(self) -> int:
        return self.num_examples_in(self.split_arrays("train", ""))

    def load_splits(self, data_dir: str) -> dict[str, dict]:
        del data_dir  # the Bibles are system SWORD modules
        raw = data.load(MAX_LEN)
        return {
            name: {
                "inputs": torch.from_numpy(raw[f"{name}_source"]),
                "targets": torch.from_numpy(raw[f"{name}_target"]),
            }
            for name in SPLITS
        }

    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = data.tokenizer(data.load(MAX_LEN)["tokenizer"].tobytes())
        return self._tokenizer

    def make_batch(self, split: dict, index: torch.Tensor) -> dict:
        """Sources and targets cut to the batch's longest (PAD columns cost compute and change nothing)."""
        source, target = (trim(split[k].index_select(0, index).long()) for k in ("inputs", "targets"))
        target_in = torch.cat([torch.full_like(target[:, :1], data.BOS), target[:, :-1]], dim=1)
        return {
            "inputs": {"source": source, "target_in": target_in},
            "targets": target,
            "weights": (target != data.PAD).float(),
        }

    def build_model(self):
        return Translator(data.VOCAB, MAX_LEN)

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        """Per-token cross-entropy over non-PAD targets: 'per_example' is (batch, length), 'n_valid_examples'
        counts real tokens."""
        if mask_batch is None:
            mask_batch = (label_batch != data.PAD).float()
        return softmax_cross_entropy(label_batch, logits_batch.transpose(1, 2), mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        loss, tokens, correct = 0.0, 0.0, 0.0
        for batch, logits in outputs:
            mask = batch["targets"] != data.PAD
            loss += self.loss_fn(batch["targets"], logits)["summed"].item()
            tokens += mask.sum().item()
            correct += ((logits.argmax(-1) == batch["targets"]) & mask).sum().item()
        return {"loss": loss / tokens, "accuracy": correct / tokens}

    def detokenize(self, ids: torch.Tensor) -> list[str]:
        """Text of (batch, length) ids, each cut at its first EOS."""
        rows = []
        for row in ids.tolist():
            rows.append(row[: row.index(data.EOS)] if data.EOS in row else row)
        return self.tokenizer().decode([[t for t in r if t != data.PAD] for r in rows])

    @torch.no_grad()
    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ) -> dict[str, float]:
        """Teacher-forced loss and token accuracy, and BLEU of greedy decodes, on the split's first examples."""
        result = super()._eval_model_on_split(
            split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step
        )
        split_data = self.split_arrays(split, data_dir)
        n = min(num_examples, self.num_examples_in(split_data))
        model = ddp.unwrap(params).eval()
        decoded = []  # (hypotheses, references) per batch; under torchrun each rank decodes its share
        for start in ddp.mine(range(0, n, global_batch_size)):
            source = trim(split_data["inputs"][start : start + global_batch_size].long())
            targets = split_data["targets"][start : start + global_batch_size].long()
            decoded.append((self.detokenize(model.greedy(source, MAX_LEN)), self.detokenize(targets)))
        decoded = ddp.gather_in_order(decoded)
        hypotheses, references = [h for hs, _ in decoded for h in hs], [r for _, rs in decoded for r in rs]
        return {**result, "bleu": corpus_bleu(hypotheses, references)}
