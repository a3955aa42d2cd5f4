"""Documentation and deployment files stay true to the code: settings, compose environment and mounts."""

from __future__ import annotations

import yaml

from sharehub.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "docs").glob("*.md")))
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SETTINGS = {f"SHAREHUB_{name.upper()}" for name in Settings.model_fields}


def test_every_setting_is_documented() -> None:
    missing = sorted(s for s in SETTINGS if f"`{s}`" not in DOCS)
    assert missing == []


def test_compose_sets_only_real_settings_and_mounts_real_folders() -> None:
    for name, service in COMPOSE["services"].items():
        env = service.get("environment") or {}
        unknown = sorted(k for k in env if k.startswith("SHAREHUB_") and k not in SETTINGS)
        assert unknown == [], (name, unknown)
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), (name, source)
    needed = {
        "postgres",
        "minio",
        "mailpit",
        "sharehub-api",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    assert needed <= set(COMPOSE["services"])


def test_readme_opens_with_the_two_commands() -> None:
    blocks = README.split("```")
    assert blocks[1].strip().startswith("sh\nmake demo") and blocks[3].strip().startswith("sh\nmake test")


def test_every_page_the_readme_links_exists() -> None:
    import re

    linked = set(re.findall(r"\]\(((?:docs/)?[\w.-]+\.md)\)", README))
    assert {"ARCHITECTURE.md", "docs/api.md", "docs/configuration.md"} <= linked
    assert [page for page in sorted(linked) if not (REPO_ROOT / page).exists()] == []
