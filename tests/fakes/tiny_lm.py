"""A tiny randomly initialised Llama with a character-level tokenizer, built offline in seconds.

Nothing comes from a model hub: the tokenizer is assembled with `tokenizers` (one token per
printable character plus the ChatML specials) and given a ChatML chat template, and the model is
a 2-layer LlamaForCausalLM with random weights. Its output is gibberish; the tests only need
real tensors going through real `generate()` code. Characters round-trip exactly, so what the
model was fed can be decoded back and checked (the privacy spy relies on that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<s>", "<|im_end|>", "<unk>", "<|im_start|>"]


def build_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"] + list("’“”—é")
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tok.chat_template = CHATML
    return tok


def build_tiny_lm(
    seed: int = 0, hidden: int = 64, layers: int = 2, heads: int = 4
) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    return model, tok


def save_tiny_lm(path: Path, seed: int = 0, **kw: Any) -> Path:
    model, tok = build_tiny_lm(seed, **kw)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
