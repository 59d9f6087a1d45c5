"""A mixture whose members have their own prompt sets, and variations written by their parent's model.

An instruct model and a base model need different prompts; the PE APIs choose each request's
member before rendering it. Under `generation.mixture_routing: lineage`, a variation is written by
the member that wrote its parent, so a member's share of later iterations follows the noisy votes
its texts won.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.config import parse_config
from augpe.errors import ConfigError
from augpe.llm.base import GenerationRequest
from augpe.llm.mixture import MixtureLLM
from augpe.pe.apis import TextAPIs, Writers
from augpe.pe.prompts import load_prompt_set
from augpe.records.sample import Sample
from augpe.runner import compose as pipeline

INSTRUCT, BASE = load_prompt_set("generic"), load_prompt_set("generic_base")


class Member(FakeLLM):
    """A FakeLLM that keeps every request it answers (a base-model request ends in an unfinished
    assistant turn: the FakeLLM reads the user turn before it)."""

    def __init__(self, name: str) -> None:
        super().__init__(public_pool(30), name=name)
        self.requests: list[GenerationRequest] = []

    def generate(self, requests, desc=""):
        self.requests += list(requests)
        user_last = [
            replace(r, messages=[m for m in r.messages if m["role"] != "assistant"])
            for r in requests
        ]
        return super().generate(user_last, desc)


def apis_for(lineage: bool) -> tuple[TextAPIs, Member, Member]:
    a, b = Member("instruct-model"), Member("base-model")
    labels = [["alpha", "beta"], ["an alpha story", "a beta story"]]
    writers = Writers([INSTRUCT, BASE], labels, [1.0, 1.0], [a.name, b.name], lineage)
    cfg = parse_config({"data": {"path": "x.csv"}}).generation
    apis = TextAPIs(
        MixtureLLM([(a, 1.0), (b, 1.0)]),
        INSTRUCT,
        cfg,
        ["alpha", "beta"],
        5,
        None,
        (),
        None,
        writers,
    )
    return apis, a, b


def is_base_request(r: GenerationRequest) -> bool:
    return r.messages[-1] == {"role": "assistant", "content": '"'} and r.stop == BASE.stop


def test_each_member_gets_requests_rendered_with_its_own_prompt_set() -> None:
    apis, a, b = apis_for(lineage=False)
    out = apis.random([0, 1] * 30, iteration=0)
    assert len(a.requests) + len(b.requests) == 60
    assert 15 <= len(b.requests) <= 45  # equal weights
    assert all(is_base_request(r) and r.member == 1 for r in b.requests)
    assert not any(is_base_request(r) for r in a.requests)
    assert all(r.member == 0 and r.messages[0]["content"] == INSTRUCT.system for r in a.requests)
    assert all(" story" in r.messages[1]["content"] for r in b.requests)  # its own descriptions
    assert not any(" story" in r.messages[-1]["content"] for r in a.requests)
    assert Counter(s.model for s in out) == {a.name: len(a.requests), b.name: len(b.requests)}
    again, _, _ = apis_for(lineage=False)  # the choice is a function of the slot: reproducible
    assert [s.model for s in again.random([0, 1] * 30, iteration=0)] == [s.model for s in out]


def test_under_lineage_a_variation_is_written_by_its_parents_model() -> None:
    apis, a, b = apis_for(lineage=True)
    parents = [
        Sample(f"p{i}", f"Text number {i} about the weather today.", i % 2, 0, None, m, "random")
        for i, m in enumerate([a.name] * 6 + [b.name] * 2 + ["public"] * 20)
    ]
    kids = apis.vary(parents, 2, iteration=1)
    by_parent = {p.id: p.model for p in parents}
    for k in kids:
        if by_parent[k.parent_id] != "public":
            assert k.model == by_parent[k.parent_id]
    public_kids = Counter(k.model for k in kids if by_parent[k.parent_id] == "public")
    assert set(public_kids) == {a.name, b.name}  # no member wrote it: drawn by weight
    plain, a2, b2 = apis_for(lineage=False)
    drawn = Counter(k.model for k in plain.vary(parents[:8], 2, iteration=1))
    assert set(drawn) == {a2.name, b2.name}  # request routing ignores the parent


def test_a_request_naming_a_missing_member_is_refused() -> None:
    mix = MixtureLLM([(Member("a"), 1.0), (Member("b"), 1.0)])
    req = GenerationRequest([{"role": "user", "content": "Hi"}], 8, 1.0, 0.9, seed=1, member=2)
    with pytest.raises(ValueError, match="member 2"):
        mix.generate([req])


def mixture_config(data: Path, out: Path, routing: str, **extra):
    return small_config(
        data,
        out,
        4.0,
        generation={
            "prompts": "generic",
            "mixture": [{"weight": 1}, {"weight": 1, "prompts": "generic_base"}],
            "mixture_routing": routing,
        },
        pe={"iterations": 2, "samples": 40, "variations": 2, "output": "every"},
        privacy={"class_counts": "uniform"},
        **extra,
    )


def test_a_lineage_run_keeps_each_text_with_its_parents_model(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60, like=public_pool(30)))
    cfg = mixture_config(data, tmp_path / "run", "lineage")
    a, b = Member("instruct-model"), Member("base-model")
    result = pipeline.run(
        cfg, show_progress=False, llm=MixtureLLM([(a, 1.0), (b, 1.0)]), embedder=HashEmbedder(32)
    )
    assert a.requests and b.requests
    assert all(is_base_request(r) for r in b.requests)
    assert not any(is_base_request(r) for r in a.requests)
    written: dict[str, str] = {}
    for f in sorted((tmp_path / "run" / "state").glob("population_*.json")):
        for s in json.loads(f.read_text())["samples"]:
            written[s["id"]] = s["model"]
    varied = [r for r in result.samples if r["parent_id"] in written]
    assert varied and all(r["model"] == written[r["parent_id"]] for r in varied)


def test_lineage_is_refused_without_a_mixture_or_on_ray(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lineage needs a generation.mixture"):
        parse_config({"data": {"path": "x.csv"}, "generation": {"mixture_routing": "lineage"}})
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60))
    cfg = mixture_config(data, tmp_path / "run", "lineage", execution={"engine": "ray"})
    with pytest.raises(ConfigError, match="lineage runs on the local engine"):
        pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    assert not (tmp_path / "run").exists()


def test_lineage_with_a_caller_passed_llm_that_is_not_the_mixture_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60))
    cfg = mixture_config(data, tmp_path / "run", "lineage")
    with pytest.raises(ConfigError, match=r"mixture of generation.mixture's 2 members; it is fake"):
        pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    assert not (tmp_path / "run").exists()


def test_a_members_unknown_prompt_set_is_refused_before_the_run(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60))
    cfg = small_config(
        data,
        tmp_path / "run",
        generation={"mixture": [{"weight": 1}, {"weight": 1, "prompts": "no_such_set"}]},
    )
    with pytest.raises(ConfigError, match="no_such_set"):
        pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
