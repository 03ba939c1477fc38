"""A stand-in LFM2 tokenizer: byte-level BPE with the real special tokens at their real ids.

The real ``tokenizer.json`` is not available offline, so the fixtures build one that keeps
every property code under test relies on: the vocabulary has exactly 65 536 entries, every
id decodes, no two entries share a string (mlx-vlm's streaming detokenizer indexes the
vocabulary by id and breaks on duplicates), any Unicode text tokenizes (byte-level BPE over
the 256 byte symbols), and the special tokens sit at the ids LFM2-VL-450M gives them.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "VOCAB_SIZE",
    "added_tokens",
    "chat_template",
    "tokenizer_json",
    "write_tokenizer_files",
]

VOCAB_SIZE = 65536

_NAMED_SPECIALS: dict[int, str] = {
    0: "<|pad|>",
    1: "<|startoftext|>",
    2: "<|endoftext|>",
    3: "<|fim_pre|>",
    4: "<|fim_mid|>",
    5: "<|fim_suf|>",
    6: "<|im_start|>",
    7: "<|im_end|>",
    8: "<|tool_list_start|>",
    9: "<|tool_list_end|>",
    10: "<|tool_call_start|>",
    11: "<|tool_call_end|>",
    12: "<|tool_response_start|>",
    13: "<|tool_response_end|>",
    396: "<image>",
    497: "<|img_thumbnail|>",
    498: "<|image_start|>",
    499: "<|image_end|>",
    500: "<|image_split|>",
    64394: "<|cot_start|>",
    64395: "<|cot_end|>",
    64396: "<|review_start|>",
    64397: "<|review_end|>",
    64398: "<|file_start|>",
    64399: "<|file_end|>",
}
# The real checkpoint also lists two ordinary words as (non-special, normalized) added tokens.
_PLAIN_ADDED: dict[int, str] = {64011: "Mathias", 64014: "python"}
_RESERVED_IDS = range(16, 396)  # <|reserved_6|> .. <|reserved_385|>: id = n + 10
_GRID_FIRST_ID, _GRID_SIDE = 397, 10  # <|img_row_R_col_C|> for R, C in 1..10, row-major

_BOS, _EOS, _PAD = "<|startoftext|>", "<|im_end|>", "<|pad|>"
_IMAGE_TOKENS = {
    "image_end_token": "<|image_end|>",
    "image_start_token": "<|image_start|>",
    "image_thumbnail": "<|img_thumbnail|>",
    "image_token": "<image>",
}


def added_tokens() -> dict[int, tuple[str, bool]]:
    """Every added token of LFM2-VL-450M: ``{id: (content, special)}``, sorted by id."""
    return dict(_added_table())


@functools.cache
def _added_table() -> dict[int, tuple[str, bool]]:
    table = {i: (s, True) for i, s in _NAMED_SPECIALS.items()}
    table.update({i: (f"<|reserved_{i - 10}|>", True) for i in _RESERVED_IDS})
    for n in range(_GRID_SIDE * _GRID_SIDE):
        row, col = divmod(n, _GRID_SIDE)
        table[_GRID_FIRST_ID + n] = (f"<|img_row_{row + 1}_col_{col + 1}|>", True)
    table.update({i: (s, False) for i, s in _PLAIN_ADDED.items()})
    return dict(sorted(table.items()))


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte-level alphabet: the printable character standing for each byte 0..255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _pair_order() -> list[tuple[int, int]]:
    """Byte pairs, the ones of common text (printable ASCII, newline) first."""
    common = [10, *range(32, 127)]
    first = [(a, b) for a in common for b in common]
    seen = set(first)
    rest = [(a, b) for a in range(256) for b in range(256) if (a, b) not in seen]
    return first + rest


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Fill every id: added tokens at their ids, then the 256 byte symbols, then byte pairs."""
    added = _added_table()
    vocab = {content: i for i, (content, _) in added.items()}
    free = (i for i in range(VOCAB_SIZE) if i not in added)
    alphabet = _bytes_to_unicode()
    for symbol in alphabet:
        vocab[symbol] = next(free)
    merges: list[tuple[str, str]] = []
    for (a, b), token_id in zip(_pair_order(), free, strict=False):  # until ids run out
        left, right = alphabet[a], alphabet[b]
        vocab[left + right] = token_id
        merges.append((left, right))
    if len(vocab) != VOCAB_SIZE:
        raise AssertionError(f"stand-in vocabulary has {len(vocab)} entries, not {VOCAB_SIZE}")
    return vocab, merges


@functools.cache
def tokenizer_json() -> str:
    """The ``tokenizer.json`` text, built with the ``tokenizers`` library (cached)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab, merges = _vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{_BOS}:0 $A:0", pair=f"{_BOS}:0 $A:0 {_BOS}:1 $B:1", special_tokens=[(_BOS, 1)]
    )
    tok.add_tokens(
        [
            AddedToken(content, special=special, normalized=not special)
            for content, special in _added_table().values()
        ]
    )
    return str(tok.to_str())


def _added_tokens_decoder() -> dict[str, dict[str, Any]]:
    return {
        str(i): {
            "content": content,
            "lstrip": False,
            "normalized": not special,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for i, (content, special) in _added_table().items()
    }


def _tokenizer_config(with_auto_map: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": _added_tokens_decoder(),
    }
    if with_auto_map:
        config["auto_map"] = {"AutoProcessor": "processing_lfm2_vl.Lfm2VlProcessor"}
    config.update(
        {
            "bos_token": _BOS,
            "clean_up_tokenization_spaces": True,
            "eos_token": _EOS,
            "extra_special_tokens": dict(_IMAGE_TOKENS),
            **_IMAGE_TOKENS,
            "legacy": False,
            "model_max_length": 1000000000000000019884624838656,
            "pad_token": _PAD,
            "processor_class": "Lfm2VlProcessor",
            "return_token_type_ids": False,
            "sp_model_kwargs": {},
            "spaces_between_special_tokens": False,
            "tokenizer_class": "PreTrainedTokenizerFast",
            "use_default_system_prompt": False,
            "use_fast": True,
        }
    )
    return config


def _special_tokens_map() -> dict[str, Any]:
    def entry(content: str) -> dict[str, Any]:
        return {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
        }

    return {
        "bos_token": entry(_BOS),
        "eos_token": entry(_EOS),
        **_IMAGE_TOKENS,
        "pad_token": entry(_PAD),
    }


def chat_template() -> str:
    """The LFM2.5-style chat template shipped next to this module (images, tools, tool turns)."""
    return resources.files(__package__).joinpath("chat_template.jinja").read_text("utf-8")


def write_tokenizer_files(dest: Path, *, with_auto_map: bool) -> None:
    """Write ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` and
    ``chat_template.jinja`` into ``dest``, shaped like the LFM2-VL-450M repository's.

    Args:
        dest: The checkpoint folder (must exist).
        with_auto_map: Keep the first release's ``auto_map`` (remote-code processor) entry.
    """
    (dest / "tokenizer.json").write_text(tokenizer_json(), encoding="utf-8")
    config = json.dumps(_tokenizer_config(with_auto_map), indent=2, ensure_ascii=False)
    (dest / "tokenizer_config.json").write_text(config + "\n", encoding="utf-8")
    special = json.dumps(_special_tokens_map(), indent=2)
    (dest / "special_tokens_map.json").write_text(special + "\n", encoding="utf-8")
    (dest / "chat_template.jinja").write_text(chat_template(), encoding="utf-8")
