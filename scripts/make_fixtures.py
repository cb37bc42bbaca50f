#!/usr/bin/env python3
"""Writes the golden fixtures the runtime's tests compare against, with PyTorch + transformers.

  python3 -m pip install torch transformers safetensors numpy
  python3 scripts/make_fixtures.py [MODEL_DIR]     # MODEL_DIR from scripts/fetch_model.sh

Outputs (committed; small):
  runtime/tests/fixtures/minilm_golden.safetensors + .json
      all-MiniLM-L6-v2 on varied inputs: token ids, every layer's hidden states (all rows of
      inputs up to 64 tokens; a documented subset of rows of longer ones, to keep the file
      small) and the sentence embeddings (mean pooling over the mask, L2-normalised, exactly
      as sentence-transformers computes them). Truncation at 256 tokens, the model's
      sentence-transformers max_seq_length.
  runtime/tests/fixtures/tiny_cls/  (config.json, model.safetensors in BF16 with the `bert.`
      prefix, tokenizer.json, golden.json)
      a randomly initialised (seed 0) BertForSequenceClassification with a 3-label head and a
      small vocabulary, and its logits on single sentences and pairs.
  runtime/tests/fixtures/tiny_tok/  (the same files)
      a randomly initialised (seed 1) BertForTokenClassification with 8 UPOS-like labels and
      tiny_cls's vocabulary, and, per text, its tokens' logits, each token's word index and
      offsets (the fast tokenizer's `word_ids()` and `offset_mapping`), also for pre-split words
      (`is_split_into_words=True`).

  python3 scripts/make_fixtures.py --only tiny_tok   # one fixture (no model needed for the tiny ones)
"""
import json, os, subprocess, sys

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, BertForTokenClassification,
                          BertModel, BertTokenizerFast)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "runtime", "tests", "fixtures")
MAX_LEN = 256
FULL_ROWS = 64

LONG = (
    "Knowledge distillation compresses a large teacher network into a smaller student by training the "
    "student to reproduce the teacher's outputs and intermediate representations. "
) 
TEXTS = [
    "",
    "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée à la façon de Noël: naïve résumé, Ångström, Zürich, São Paulo.",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.",
    "I love pizza 🍕🍕 and rockets 🚀! 😀👍🏽 #blessed",
    "[CLS] this text contains a [MASK] and a [SEP] and [PAD] as literal text [UNK]",
    "   multiple   spaces\tand\ttabs\nand new lines   ",
    "It's 3.14159... isn't it? (yes) - $100/hr, 50% off!!! e-mail: someone@example.org",
    LONG * 5,   # about 150 tokens: longer than the tokenizer.json's fixed padding of 128
    LONG * 12,  # about 360 tokens: truncated to 256
]


def rows_kept(n):
    """Rows stored for an input of n tokens: all up to FULL_ROWS, else first 8, every 16th, last 4."""
    if n <= FULL_ROWS:
        return list(range(n))
    return sorted(set(range(8)) | set(range(0, n, 16)) | set(range(n - 4, n)))


def minilm(model_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    tensors, meta = {}, []
    with torch.no_grad():
        for i, text in enumerate(TEXTS):
            enc = tok(text, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            out = model(**enc, output_hidden_states=True)
            ids = enc["input_ids"][0].numpy()
            n = len(ids)
            rows = rows_kept(n)
            for l, h in enumerate(out.hidden_states):
                tensors[f"input{i}.layer{l}"] = h[0, rows].numpy().astype(np.float32)
            last = out.last_hidden_state[0]
            mask = enc["attention_mask"][0].unsqueeze(-1).float()
            emb = (last * mask).sum(0) / mask.sum(0).clamp(min=1e-9)
            emb = torch.nn.functional.normalize(emb, p=2, dim=0)
            tensors[f"input{i}.embedding"] = emb.numpy().astype(np.float32)
            tensors[f"input{i}.ids"] = ids.astype(np.int64)
            tensors[f"input{i}.rows"] = np.array(rows, dtype=np.int64)
            meta.append({"text": text, "tokens": n})
    save_file(tensors, os.path.join(OUT, "minilm_golden.safetensors"))
    sha = subprocess.run(["sha256sum", os.path.join(model_dir, "model.safetensors")], capture_output=True, text=True).stdout.split()[0]
    info = {
        "model": "all-MiniLM-L6-v2", "model_sha256": sha, "max_seq_len": MAX_LEN,
        "layers": len(out.hidden_states), "torch": torch.__version__,
        "transformers": __import__("transformers").__version__, "inputs": meta,
        "rows": f"all rows up to {FULL_ROWS} tokens, else first 8, every 16th and last 4",
    }
    with open(os.path.join(OUT, "minilm_golden.json"), "w") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)


TINY_WORDS = ("the a an is was good bad movie film great terrible plot acting not very really i it this that "
              "and or but love hate boring fun story music ending actors scene ##s ##ing ##ed , . ! ?").split()


def tiny_tokenizer(d, vocab):
    """The fast WordPiece tokenizer of `vocab`, saved as `d`/tokenizer.json alone."""
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab=os.path.join(d, "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(d)
    for extra in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    return tok


def tiny_cls():
    d = os.path.join(OUT, "tiny_cls")
    os.makedirs(d, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS
    tok = tiny_tokenizer(d, vocab)
    assert tok("good movie")["input_ids"] == [2, vocab.index("good"), vocab.index("movie"), 3]
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                     num_labels=3, id2label={0: "negative", 1: "neutral", 2: "positive"},
                     label2id={"negative": 0, "neutral": 1, "positive": 2}, pad_token_id=0)
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # a random init far from the defaults, so every weight matters
            p.add_(torch.randn_like(p) * 0.2)
    model = model.to(torch.bfloat16)
    model.save_pretrained(d, safe_serialization=True)
    model = model.float()  # the bf16-rounded weights, computed in float32
    singles = ["good movie", "the plot was not very good, but the music!", "", "i hate this boring film ."]
    pairs = [["a great story", "terrible acting"], ["it was fun", ""]]
    golden = {"singles": [], "pairs": []}
    with torch.no_grad():
        for s in singles:
            enc = tok(s, return_tensors="pt")
            golden["singles"].append({"text": s, "ids": enc["input_ids"][0].tolist(), "logits": model(**enc).logits[0].tolist()})
        for a, b in pairs:
            enc = tok(a, b, return_tensors="pt")
            golden["pairs"].append({"a": a, "b": b, "ids": enc["input_ids"][0].tolist(),
                                    "type_ids": enc["token_type_ids"][0].tolist(), "logits": model(**enc).logits[0].tolist()})
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


TOK_LABELS = ["NOUN", "VERB", "ADJ", "DET", "PRON", "PUNCT", "ADV", "CCONJ"]


def tiny_tok():
    d = os.path.join(OUT, "tiny_tok")
    os.makedirs(d, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS
    tok = tiny_tokenizer(d, vocab)
    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                     num_labels=len(TOK_LABELS), id2label=dict(enumerate(TOK_LABELS)),
                     label2id={l: i for i, l in enumerate(TOK_LABELS)}, pad_token_id=0)
    model = BertForTokenClassification(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model = model.to(torch.bfloat16)
    model.save_pretrained(d, safe_serialization=True)
    model = model.float()
    # Sub-words (acting = act + ##ing), an unknown word, punctuation split off, repeated spaces,
    # an empty text.
    texts = ["good movie", "the actors were boring, but the ending!", "i really loved  this films .",
             "", "zebra plot"]
    words = [["the", "acting", "was", "great"], ["boring", "!", "xylophone"]]
    golden = {"labels": TOK_LABELS, "texts": [], "words": []}

    def case(enc):
        with torch.no_grad():
            logits = model(**{k: torch.tensor([v]) for k, v in enc.items() if k != "offset_mapping"}).logits[0]
        return {"ids": enc["input_ids"], "word_ids": enc.word_ids(), "logits": logits.tolist()}

    for t in texts:
        enc = tok(t, return_offsets_mapping=True)
        c = case(enc)
        c.update(text=t, offsets=[list(o) for o in enc["offset_mapping"]])
        golden["texts"].append(c)
    for w in words:
        c = case(tok(w, is_split_into_words=True))
        c.update(words=w)
        golden["words"].append(c)
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


if __name__ == "__main__":
    args = sys.argv[1:]
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1]
        del args[i:i + 2]
    os.makedirs(OUT, exist_ok=True)
    if only in (None, "minilm"):
        model_dir = args[0] if args else subprocess.run(
            [os.path.join(ROOT, "scripts", "fetch_model.sh")], capture_output=True, text=True, check=True).stdout.strip()
        minilm(model_dir)
    if only in (None, "tiny_cls"):
        tiny_cls()
    if only in (None, "tiny_tok"):
        tiny_tok()
    print("fixtures written to", OUT)
