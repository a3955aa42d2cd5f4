"""Every text cites the active profile's own article, and every article a profile quotes says what it quotes."""

from __future__ import annotations

import ast
import re
import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest

from sharehub.consistency.normalize import _traditional
from sharehub.demo.build import build_sources
from sharehub.notices import list_notices, mark_overdue
from sharehub.pipeline.run import run_resource
from sharehub.profiles import CITED, FOLDER, load_profile
from sharehub.settings import REPO_ROOT

SEEDS = FOLDER / "seeds"  # the five regulations, as published, beside the profiles that cite them
PROFILES = sorted(p.stem for p in FOLDER.glob("*.yaml"))
JURISDICTIONS = re.compile(
    r"(Lichuan|Hengyang|Zhongshan|Zhejiang|Fushun|利川|衡阳|中山|浙江|抚顺)\S{0,12}(\d+|第[一二三四五六七八九十百]+条)"
)


def _plain(text: str) -> str:
    """Simplified characters, half-width, no spaces or punctuation: how a quote is found in its seed."""
    source, target = _traditional()
    text = unicodedata.normalize("NFKC", text).translate(str.maketrans(source, target))
    return "".join(ch for ch in text if ch.isalnum())


def _articles(seed: str) -> dict[str, str]:
    text = _plain((SEEDS / seed).read_text(encoding="utf-8"))
    parts = re.split(r"(?=第[一二三四五六七八九十百]+条)", text)
    found: dict[str, str] = {}
    for part in parts:
        head = re.match(r"第[一二三四五六七八九十百]+条", part)
        if head:
            found.setdefault(head.group(0), part)
    return found


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_cited_article_says_what_the_profile_quotes(profile_id: str) -> None:
    profile = load_profile(profile_id)
    articles = _articles(profile.seed)
    for rule in CITED:
        quoted = profile.citations[rule].article
        if quoted is None:
            assert profile.cite(rule).startswith("平台规则"), rule
            continue
        number, _, words = quoted.partition("：")
        assert number in articles, (profile_id, rule, number)
        assert _plain(words) in articles[number], (profile_id, rule, quoted)


WORKFLOW_BASES = (
    "application_basis",
    "delivery_basis",
    "objection_basis",
    "not_shared_review",
    "open_basis_published",
    "open_types_basis",
)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_workflow_basis_quotes_its_article_or_says_it_is_the_platforms(profile_id: str) -> None:
    profile = load_profile(profile_id)
    articles = _articles(profile.seed)
    for field in WORKFLOW_BASES:
        basis = getattr(profile.workflow, field)
        if basis is None or basis.startswith("平台默认"):
            continue
        number, _, words = basis.partition("：")
        quoted = words.split("（")[0]  # a note in brackets after the quote is the profile's own
        assert number in articles, (profile_id, field, number)
        assert _plain(quoted) in articles[number], (profile_id, field, basis)


def test_no_text_cites_a_jurisdiction_of_its_own_accord() -> None:
    """Strings the hub shows or sends (not docstrings) take their articles from the active profile."""
    found = []
    for path in [*(REPO_ROOT / "sharehub").rglob("*.py"), *(REPO_ROOT / "api").rglob("*.py")]:
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if JURISDICTIONS.search(node.value):
                    found.append(f"{Path(path).relative_to(REPO_ROOT)}:{node.lineno}: {node.value[:80]}")
    assert found == []


@pytest.mark.slow  # a pipeline run per profile
@pytest.mark.parametrize("profile_id", ["zhongshan", "hengyang"])
def test_an_escalation_cites_the_active_profile(make_hub, profile_id: str) -> None:
    hub = make_hub(profile=profile_id)
    build_sources(hub.settings, hub.catalogue, 300, 60)
    run_resource(hub, "gongan.population")
    (notice,) = list_notices(hub)
    mark_overdue(hub, notice.deadline + timedelta(seconds=1))
    (escalation,) = list_notices(hub, department="platform")
    assert hub.profile.cite("rectification") in escalation.body
    others = {load_profile(p).regulation.split("（")[0] for p in PROFILES} - {hub.profile.regulation.split("（")[0]}
    assert not any(other in escalation.body for other in others)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_deadline_from_the_regulation_quotes_its_article(profile_id: str) -> None:
    profile = load_profile(profile_id)
    articles = _articles(profile.seed)
    wrong = []
    for kind, rule in profile.deadlines.items():
        if not rule.from_regulation:
            continue
        number = re.match(r"第[一二三四五六七八九十百]+条", rule.basis)
        quoted = re.findall(r"[“\"]([^”\"]+)[”\"]", rule.basis) or [rule.basis.partition("：")[2]]
        if number is None or number.group(0) not in articles:
            wrong.append(f"{kind}: {rule.basis[:40]} names no article of its seed")
            continue
        article = articles[number.group(0)]
        wrong += [f"{kind}: {q!r} is not in {number.group(0)}" for q in quoted if _plain(q) not in article]
    assert wrong == []


@pytest.mark.parametrize("profile_id", PROFILES)
def test_what_a_platform_default_quotes_of_its_own_regulation_is_there(profile_id: str) -> None:
    """A platform default may say what the regulation does require (本办法要求“…”): those words are the seed's."""
    profile = load_profile(profile_id)
    seed = _plain((SEEDS / profile.seed).read_text(encoding="utf-8"))
    wrong = []
    for kind, rule in profile.deadlines.items():
        for part in rule.basis.split("；"):
            if "本办法" not in part and "本条例" not in part:
                continue
            wrong += [f"{kind}: {q!r}" for q in re.findall(r"“([^”]+)”", part) if _plain(q) not in seed]
    assert wrong == []
