"""``espeak_asr``: the LibriSpeech family on this CPU, character CTC speech recognition of WordNet glosses
spoken by espeak-ng (unheard sentences and speakers in validation and test) with a small Conformer-like model
(width 96, 2 blocks, 40 log-mel bands at 50 frames/s); the target is validation word error rate of greedy CTC
decodes.

Calibration (docs/measurements.md "Workload calibration"; other jobs kept the 2 cores at load 12-25, so counted in
steps, validation every ~10-20 steps): NAdamW's first search-space point reaches WER 0.70 in 632 / 657 / 677 steps
over seeds 0-2 (median 657) at step_hint 1950, which implies 1971: the fixed point. ms/step is 1.42x stdlib_lm's
in an interleaved timing at load ~2, so ~85 ms against its calibrated 60 ms, ~56 s; through ``python -m runner``
at load ~2, seed 0 reached it at step 637 in 54.5 s (86 ms/step). Budget 3x (170 s); step_hint 1950.
"""

import torch
import torch.nn.functional as F

from algoperf import spec
from workloads.base import SPLITS, InMemoryWorkload
from workloads.espeak_asr import data
from workloads.espeak_asr.model import AcousticModel
from workloads.metrics import ctc_greedy_decode, word_error_rate


class EspeakASRWorkload(InMemoryWorkload):
    validation_target_value = 0.7
    test_target_value = 0.75
    num_train_examples = data.SIZES["train"]
    num_eval_train_examples = 250
    num_validation_examples = 250
    num_test_examples = 250
    eval_batch_size = 250
    train_mean = 0.0
    train_stddev = 1.0
    max_allowed_runtime_sec = 170
    eval_period_time_sec = 2  # ~3x a quiet eval (0.63 s): evals stay ~25% of the wall clock (docs/measurements.md)
    step_hint = 1950
    output_param_prefixes = ("head.",)

    target_metric_name = "wer"
    loss_type = spec.LossType.CTC_LOSS
    lower_is_better = True

    def load_splits(self, data_dir: str) -> dict[str, dict]:
        del data_dir  # synthesised from system packages into the cache
        raw = data.load()
        return {
            name: {
                "features": torch.from_numpy(raw[f"{name}_features"]),
                "frames": torch.from_numpy(raw[f"{name}_frames"]),
                "targets": torch.from_numpy(raw[f"{name}_labels"]),
            }
            for name in SPLITS
        }

    def make_batch(self, split: dict, index: torch.Tensor) -> dict:
        pick = lambda k: split[k].index_select(0, index)  # noqa: E731
        features = {"features": pick("features").float(), "frames": pick("frames").long()}
        return {"inputs": features, "targets": pick("targets").long()}

    def build_model(self):
        return AcousticModel(data.N_MELS, len(data.ALPHABET) + 1, data.MAX_FRAMES)

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        """CTC per utterance (padded frames are certain blanks, padded labels are BLANK); 'n_valid_examples'
        counts target characters, so summed / n_valid is the loss per character. Label smoothing does not apply
        to CTC (as in AlgoPerf's librispeech) and is ignored."""
        del label_smoothing
        lengths = (label_batch != data.BLANK).sum(1)
        log_probs = F.log_softmax(logits_batch, dim=-1).transpose(0, 1)
        frames = torch.full_like(lengths, logits_batch.shape[1])
        per_example = F.ctc_loss(log_probs, label_batch, frames, lengths, data.BLANK, "none", zero_infinity=True)
        if mask_batch is not None:
            per_example, lengths = per_example * mask_batch, lengths * mask_batch
        return {"summed": per_example.sum(), "n_valid_examples": lengths.sum(), "per_example": per_example}

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        loss, characters, hypotheses, references = 0.0, 0, [], []
        for batch, logits in outputs:
            out = self.loss_fn(batch["targets"], logits)
            loss, characters = loss + out["summed"].item(), characters + out["n_valid_examples"].item()
            hypotheses += [data.decode_text(h) for h in ctc_greedy_decode(logits, data.BLANK)]
            references += [data.decode_text(r) for r in batch["targets"].tolist()]
        return {"loss": loss / characters, "wer": word_error_rate(hypotheses, references)}
