"""The project's own dialogue set (``tests/dialogues/*.yaml``) run through ``chatcommerce test-dialogues``'s
runner against the real engine, with a ratchet.

``tests/dialogues/PASSING.txt`` lists the conversations that pass today. The test fails when a listed
conversation fails (a regression) and when a conversation passes without being listed (update the list:
it must stay honest). The pass count is printed (``pytest -s`` or in the failure report). The set itself
must keep covering every category of issue 8 in English and Russian.
"""

from __future__ import annotations

from pathlib import Path

from api.dialogue_spec import load_dialogue_file
from api.dialogue_tests import run_dialogue_files

DIALOGUES = Path(__file__).resolve().parent / "dialogues"
PASSING = DIALOGUES / "PASSING.txt"

# The categories of issue 8 ("what customers did that the engine missed"), as conversation tags.
CATEGORIES = {
    "several-items", "item-and-question", "and-also", "quantities", "follow-up", "corrections",
    "checkout-details", "budget", "unknown-item", "unknown-fact", "faq", "services", "by-description",
    "day-part", "exact-time", "small-talk", "language",
}


def dialogue_files() -> list[Path]:
    return sorted(DIALOGUES.glob("*.yaml"))


def listed_passing() -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in PASSING.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line}


def test_the_set_covers_every_category_in_both_languages() -> None:
    files = [load_dialogue_file(path) for path in dialogue_files()]
    conversations = [(spec, c) for spec in files for c in spec.conversations]
    assert len(conversations) >= 60
    languages = {spec.companies[c.company].language for spec, c in conversations if c.company}
    types = {spec.companies[c.company].type for spec, c in conversations if c.company}
    assert languages == {"en", "ru"} and types == {"product", "service", "hybrid"}
    tags = {tag for _spec, c in conversations for tag in c.tags}
    assert CATEGORIES <= tags, f"categories without a conversation: {sorted(CATEGORIES - tags)}"


def test_dialogue_set_ratchet() -> None:
    run = run_dialogue_files(dialogue_files())
    passed = {r.id for r in run.results if r.passed}
    known = {r.id for r in run.results}
    listed = listed_passing()
    print(f"\n{run.table()}\n")
    print(f"dialogue set: {len(passed)} of {len(known)} conversations pass (PASSING.txt lists {len(listed)})")
    problems = []
    if listed - known:
        problems.append(f"PASSING.txt names conversations that do not exist: {sorted(listed - known)}")
    regressions = sorted(listed & known - passed)
    if regressions:
        failures = {r.id: r for r in run.results}
        problems.append("regressions (listed as passing, now failing):\n" + "\n".join(
            f"  {i}: turn {failures[i].turn} {failures[i].said}: {failures[i].failure}" for i in regressions))
    if passed - listed:
        problems.append(f"passing but not listed in {PASSING.name} (add them): {sorted(passed - listed)}")
    assert not problems, "\n".join(problems)
