"""`augpe run --dry-run` counts exactly what a run sends, and sends nothing."""

import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, small_config, write_jsonl

from augpe.cli import main
from augpe.pe.requests import request_counts
from augpe.runner import compose as pipeline
from augpe.runner.dryrun import dry_run


@pytest.mark.parametrize(
    "pe",
    [
        {"iterations": 3, "samples": 10, "variations": 3},
        {"iterations": 2, "samples": 8, "variations": 2, "keep_parents": False},
        {"iterations": 3, "samples": 6, "variations": 3, "lookahead": 2},
    ],
)
def test_dry_run_counts_match_the_requests_of_a_real_run(tmp_path, pe):
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(40))
    cfg = small_config(data, tmp_path / "run", pe=pe, privacy={"class_counts": "uniform"})
    llm = FakeLLM()
    pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder())
    assert llm.usage.requests == request_counts(cfg.pe)["total"]


def test_dry_run_sends_nothing_and_writes_nothing(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(40))
    cfg = small_config(data, tmp_path / "run")
    report = dry_run(cfg)
    assert report["requests"]["total"] > 0 and len(report["example_prompts"]) == 3
    private = {r["text"] for r in private_rows(40)}
    shown = str(report["example_prompts"])
    assert not any(t in shown for t in private)
    cfg_file = tmp_path / "c.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(cfg.dump()))
    assert main(["run", str(cfg_file), "--dry-run"]) == 0
    assert "nothing was sent" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()


def test_a_mixture_member_with_its_own_prompts_is_counted_with_them(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(40))
    long_set = tmp_path / "long.yaml"
    long_set.write_text(
        "name: long\n"
        'system: "' + "Write a realistic text. " * 60 + '"\n'
        'random:\n  templates: ["Write {label}."]\n'
        'rephrase:\n  template: "Rewrite: {text}"\n  styles: [plainly]\n'
        'fill_blanks:\n  template: "Fill: {masked}"\n  examples: []\n'
    )
    plain = small_config(data, tmp_path / "run", generation={"mixture": [{"weight": 1}] * 2})
    mixed = small_config(
        data,
        tmp_path / "run",
        generation={"mixture": [{"weight": 1}, {"weight": 1, "prompts": str(long_set)}]},
    )
    shown, counted = dry_run(plain), dry_run(mixed)
    assert counted["example_prompts"] == shown["example_prompts"]  # the main set is shown
    assert counted["estimated_prompt_tokens"] > shown["estimated_prompt_tokens"] + 100
