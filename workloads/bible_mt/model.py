"""A small encoder-decoder Transformer (the WMT family scaled to this CPU): one token embedding shared by both
languages (their vocabulary is shared) and by both sides, learned positions, pre-LN blocks from
workloads/transformer.py, an untied output layer, and greedy decoding."""

import torch
from torch import nn

from workloads.bible_mt.data import BOS, EOS, PAD
from workloads.transformer import Block, DecoderBlock


class Translator(nn.Module):
    def __init__(self, vocab: int, max_len: int, width: int = 128, depth: int = 2, num_heads: int = 4):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.pos_embedding = nn.Parameter(torch.randn(1, max_len, width) * 0.02)
        self.encoder = nn.ModuleList(Block(width, num_heads) for _ in range(depth))
        self.encoder_norm = nn.LayerNorm(width)
        self.decoder = nn.ModuleList(DecoderBlock(width, num_heads) for _ in range(depth))
        self.decoder_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def _embed(self, tokens: torch.Tensor, first_position: int = 0) -> torch.Tensor:
        positions = self.pos_embedding[:, first_position : first_position + tokens.shape[1]]
        return self.token_embedding(tokens) + positions

    def encode(self, source: torch.Tensor, dropout_rate: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's output and its key mask (True at real source tokens)."""
        mask = source != PAD
        h = self._embed(source)
        for block in self.encoder:
            h = block(h, dropout_rate, mask)
        return self.encoder_norm(h), mask

    def decode(self, target_in, memory, memory_mask, dropout_rate: float = 0.0) -> torch.Tensor:
        """The decoder's final hidden states (batch, target length, width)."""
        h = self._embed(target_in)
        for block in self.decoder:
            h = block(h, memory, memory_mask, dropout_rate)
        return self.decoder_norm(h)

    def forward(self, inputs: dict, dropout_rate: float = 0.0) -> torch.Tensor:
        """Teacher-forced logits (batch, target length, vocab) for ``inputs`` {'source', 'target_in'}."""
        memory, mask = self.encode(inputs["source"], dropout_rate)
        return self.head(self.decode(inputs["target_in"], memory, mask, dropout_rate))

    @torch.no_grad()
    def greedy(self, source: torch.Tensor, max_len: int) -> torch.Tensor:
        """(batch, <= max_len) ids chosen greedily, EOS included; PAD after a sequence's EOS."""
        memory, mask = self.encode(source)
        out = torch.full((len(source), 1), BOS, dtype=torch.long, device=source.device)
        done = torch.zeros(len(source), dtype=torch.bool, device=source.device)
        caches = [{} for _ in self.decoder]
        for position in range(max_len):
            h = self._embed(out[:, -1:], position)
            for block, cache in zip(self.decoder, caches, strict=True):
                h = block(h, memory, mask, 0.0, cache)
            next_id = self.head(self.decoder_norm(h[:, -1])).argmax(-1)
            next_id = torch.where(done, torch.full_like(next_id, PAD), next_id)
            out = torch.cat([out, next_id[:, None]], dim=1)
            done |= next_id == EOS
            if done.all():
                break
        return out[:, 1:]
