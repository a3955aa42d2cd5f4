"""The web console in a real browser: headless Chromium (Debian's package) driven by Playwright, against
`sharehub serve` over a demo world built by `sharehub demo`. Each role walks its main path, every page is
checked with axe-core (shipped in tests/support/axe) for serious violations, and screenshots are saved in
the test's tmp dir. Without Chromium the tests fail in CI and skip, loudly, elsewhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sharehub.settings import REPO_ROOT
from sharehub.workdays import CHINA, WorkCalendar
from tests.support.serve import sharehub_serve

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SKIPPED = "Chromium is missing: the console's browser tests are SKIPPED (apt install chromium)"
AXE = Path(__file__).resolve().parents[1] / "support" / "axe" / "axe.min.js"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A demo world served over HTTP: its URL, the sign-ins the demo printed, and the consumer's API key."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: CI installs Debian's chromium package (.ci/run)")
        warnings.warn(SKIPPED, stacklevel=1)
        pytest.skip("Chromium is missing (apt install chromium): browser tests skipped")
    home = tmp_path_factory.mktemp("console") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    env.update(SHAREHUB_HOME=str(home), COLUMNS="200", SHAREHUB_MODE="development")
    demo = subprocess.run(
        [sys.executable, "-m", "sharehub", "demo", "--persons", "2000", "--entities", "400"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    sign_ins = dict(re.findall(r"(demo\.\w+)\s*│\s*(\S+)", demo.stdout))
    assert set(sign_ins) == {"demo.platform", "demo.rsj", "demo.swj", "demo.mzj"}, demo.stdout[-2000:]
    (key,) = re.findall(r"Bearer (shk_\S+?)'", demo.stdout)
    with sharehub_serve(env) as served:
        yield {"url": served.url, "sign_ins": sign_ins, "key": key, "home": home}


@pytest.fixture(scope="module")
def browser(console) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


class Clerk:
    """One signed-in browser: goes to pages, checks each with axe-core, saves screenshots."""

    def __init__(self, browser, console: dict, shots: Path) -> None:
        self.context = browser.new_context(base_url=console["url"], locale="zh-CN")
        self.page = self.context.new_page()
        self.shots = shots
        self.checked: list[str] = []

    def sign_in(self, console: dict, username: str | None = None, key: str | None = None) -> None:
        self.go("/console/login")
        if key:
            self.page.get_by_label("API 密钥（shk_…）").fill(key)
            self.page.get_by_role("button", name="用密钥登录").click()
        else:
            self.page.get_by_label("用户名").fill(username or "")
            self.page.get_by_label("密码", exact=True).fill(console["sign_ins"][username])
            self.page.get_by_role("button", name="登录", exact=True).click()
        self.page.wait_for_url("**/console")
        self.check("home")

    def go(self, path: str) -> None:
        answer = self.page.goto(path)
        assert answer is not None and answer.ok, f"{path}: {answer.status if answer else 'no answer'}"

    def check(self, name: str) -> None:
        """axe-core on the page as it stands: no serious or critical violation; then a screenshot."""
        self.page.add_script_tag(path=str(AXE))
        found = self.page.evaluate("async () => (await axe.run(document)).violations")
        bad = [(v["id"], v["impact"], v["help"]) for v in found if v["impact"] in ("serious", "critical")]
        assert bad == [], f"{name}: {bad}"
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        self.checked.append(name)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def clerk(browser, console, tmp_path: Path) -> Iterator:
    made: list[Clerk] = []

    def open_() -> Clerk:
        made.append(Clerk(browser, console, tmp_path))
        return made[-1]

    yield open_
    for c in made:
        c.close()


def test_a_department_acknowledges_a_notice_and_disputes_a_row(console, clerk) -> None:
    rsj = clerk()
    rsj.sign_in(console, "demo.rsj")
    rsj.page.get_by_role("link", name="通知", exact=True).click()
    rsj.check("notices")
    rows = rsj.page.locator("tbody tr")
    assert all("rsj" in rows.nth(i).inner_text() for i in range(rows.count()))  # its own notices only
    rsj.page.locator("tr", has_text="quality").get_by_role("link").first.click()
    rsj.check("notice")
    assert "剩余" in rsj.page.locator(".facts").inner_text()  # working days left
    shown = rsj.page.locator("tbody tr").first.inner_text()
    assert "*" in shown  # the row key is masked as for the platform
    rsj.page.get_by_role("button", name="签收").click()
    assert "已签收" in rsj.page.get_by_role("status").inner_text()
    pending = rsj.page.locator("tbody tr").count()
    rsj.page.get_by_label("第 1 行的异议理由").fill("该记录经核实无误，规则不适用于历史数据")
    rsj.page.get_by_role("button", name="提出异议").first.click()
    assert "已提出异议" in rsj.page.get_by_role("status").inner_text()
    assert rsj.page.locator("tbody tr").count() == pending - 1  # the row left the notice for review
    token = rsj.page.locator("input[name=row]").first.get_attribute("value")  # names the row, not its key
    assert token is not None and re.fullmatch(r"[0-9a-f]{32}", token)
    rsj.check("notice-disputed")


def test_a_department_answers_an_objection_replies_to_a_conflict_and_reads_its_runs(console, clerk) -> None:
    rsj = clerk()
    rsj.sign_in(console, "demo.rsj")
    rsj.go("/console/objections?status=open")
    rsj.check("objections")
    row = rsj.page.locator("tbody tr", has_text="rsj.insurance_enrolment").first
    assert "*" in row.inner_text() and "停保" in row.inner_text()  # the record masked, the reason shown
    row.get_by_role("textbox").fill("已核实并更正参保状态")
    row.get_by_role("button", name="已更正").click()
    assert "已答复" in rsj.page.get_by_role("status").inner_text()

    rsj.go("/console/conflicts")
    rsj.check("provider-conflicts")
    mine = rsj.page.locator("tbody tr", has=rsj.page.get_by_role("button", name="反馈：数值正确")).first
    mine.get_by_role("textbox").fill("本部门登记信息经核实无误")
    mine.get_by_role("button", name="反馈：数值正确").click()
    assert "等待平台裁定" in rsj.page.get_by_role("status").inner_text()

    rsj.go("/console/resources")
    rsj.check("resources")
    assert "rsj.insurance_enrolment" in rsj.page.locator("main").inner_text()
    assert "swj.tax_registration" not in rsj.page.locator("main").inner_text()  # its own resources only
    rsj.page.get_by_role("link", name=re.compile("质量报告")).first.click()
    assert "quarantined" in rsj.page.content() and "rows landed" in rsj.page.content()
    due = WorkCalendar.load(None).deadline(datetime.now(UTC), 6).astimezone(CHINA).date()
    rsj.go("/console/resources")
    rsj.page.get_by_label("rsj.insurance_enrolment 报备：推迟至").fill(due.isoformat())
    rsj.page.get_by_label("rsj.insurance_enrolment 报备原因").fill("参保系统升级，暂停报送")
    rsj.page.get_by_role("button", name="报备迟报").first.click()
    assert "已报备" in rsj.page.get_by_role("status").inner_text()
    swj_run = re.search(r"/console/runs/(swj[^/]+)/report", httpx.get(f"{console['url']}/console/resources").text or "")
    assert swj_run is None  # unauthenticated: the sign-in page, no run ids


def test_the_platform_reviews_and_the_provider_approves_an_application(console, clerk) -> None:
    office = clerk()
    office.sign_in(console, "demo.platform")
    office.go("/console/applications?status=review")
    office.check("review-queue")
    row = office.page.locator("tr", has_text="swj.tax_registration")
    row.get_by_role("button", name="审核通过").click()
    assert "待提供部门授权" in office.page.get_by_role("status").inner_text()

    swj = clerk()
    swj.sign_in(console, "demo.swj")
    swj.go("/console/applications?status=provider")
    swj.check("provider-decisions")
    row = swj.page.locator("tr", has_text="swj.tax_registration")
    row.get_by_role("textbox").fill("用途符合低保核对")
    row.get_by_role("button", name="同意授权").click()
    assert "已授权" in swj.page.get_by_role("status").inner_text()
    # A consumer applies for not-shared data in the console, is refused, and contests the refusal there.
    mzj = clerk()
    mzj.sign_in(console, key=console["key"])
    mzj.go("/console/catalogue/wjw.health_record")
    assert mzj.page.get_by_role("button", name="提交申请").count() == 0  # not shared: no form to apply with
    bearer = {"Authorization": f"Bearer {console['key']}"}
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    asked = {"resource_id": "wjw.health_record", "fields": ["last_visit"], "modes": ["query"], "valid_until": until}
    asked["purpose"] = "低保因病支出核实"
    refused = httpx.post(f"{console['url']}/applications", json=asked, headers=bearer).json()
    assert refused["status"] == "refused"
    mzj.go("/console/applications?status=refused")
    mine = mzj.page.locator("tbody tr", has_text=f"#{refused['id']}")
    mine.get_by_role("textbox").fill("仅需就诊日期，不涉及病情")
    mine.get_by_role("button", name="提出异议").click()
    assert "平台将组织协商" in mzj.page.get_by_role("status").inner_text()
    office.go("/console/applications?overdue=true")
    office.check("overdue-steps")
    assert office.page.get_by_label("只看逾期的").is_checked()
    office.go("/console/applications?status=contested")
    office.check("contests")
    row = office.page.locator("tbody tr", has_text=f"#{refused['id']}")
    row.get_by_label(f"申请 #{refused['id']} 的协商结果").select_option("upheld")
    row.get_by_label("理由").fill("不予共享有法定依据")
    row.get_by_role("button", name="办结异议").click()
    assert "异议已办结" in office.page.get_by_role("status").inner_text()

    swj.go("/console/grants")  # the grants on its resources: who uses its data
    swj.check("provider-grants")
    granted = swj.page.locator("tbody tr", has_text="swj.tax_registration")
    assert granted.count() >= 1 and "有效" in granted.first.inner_text()


def test_the_platform_decides_a_conflict_and_reads_the_scores(console, clerk) -> None:
    office = clerk()
    office.sign_in(console, "demo.platform")
    office.go("/console/conflicts")
    office.check("conflicts")
    first = office.page.locator("tbody tr").first
    conflict_id = first.locator("td").first.inner_text()
    first.get_by_role("textbox").fill("以权威来源登记为准")
    first.get_by_role("button", name="以权威来源为准").click()
    assert f"冲突 {conflict_id} 已裁定" in office.page.get_by_role("status").inner_text()
    office.go("/console/scores")
    office.check("scores")
    assert office.page.locator("svg.chart rect").count() >= 5

    office.go("/console/bulletin")
    office.check("bulletin")
    assert office.page.locator("svg.chart").count() == 5  # on time, quarantined, three modes of calls
    assert office.page.locator("svg.chart polyline").count() >= 5
    with office.page.expect_download() as made:
        office.page.get_by_role("link", name=re.compile("下载 PDF 通报")).click()
    pdf = Path(made.value.path()).read_bytes()
    assert pdf[:5] == b"%PDF-" and b"STSong-Light" in pdf


def test_a_consumer_finds_applies_and_downloads_an_extract(console, clerk) -> None:
    mzj = clerk()
    mzj.sign_in(console, key=console["key"])
    mzj.go("/console/catalogue")
    mzj.page.get_by_label("共享类型").select_option("unconditional")
    mzj.page.get_by_label("服务方式").select_option("bulk")
    mzj.page.get_by_role("button", name="查找").click()
    mzj.check("catalogue")
    listed = mzj.page.locator("tbody").inner_text()
    assert "scjg.legal_entity" in listed and "rsj.insurance_enrolment" not in listed
    mzj.page.get_by_role("link", name="scjg.legal_entity").click()
    mzj.check("resource")
    mzj.page.get_by_label("统一社会信用代码（uscc）").check()
    mzj.page.get_by_label("比对验证").check()
    mzj.page.get_by_label("用途").fill("低保申请人名下企业核对")
    mzj.page.get_by_role("button", name="提交申请").click()
    assert "已授权" in mzj.page.get_by_role("status").inner_text()
    mzj.check("applications")

    mzj.go("/console/extracts")
    mzj.page.get_by_label("资源（已授权批量复制）").select_option("rsj.insurance_enrolment")
    mzj.page.get_by_role("button", name="生成批量副本").click()
    assert "已生成批量副本" in mzj.page.get_by_role("status").inner_text()
    mzj.check("extracts")
    link = mzj.page.get_by_role("link", name=re.compile("下载")).first
    with mzj.page.expect_download() as made:
        link.click()
    saved = Path(made.value.path())
    assert saved.read_bytes()[:4] == b"PAR1"

    mzj.go("/console/grants")
    mzj.check("grants")
    with mzj.page.expect_download() as made:
        mzj.page.get_by_role("link", name=re.compile("Delta Sharing 配置文件")).click()
    profile = json.loads(Path(made.value.path()).read_text())
    assert profile["endpoint"] == f"{console['url']}/delta-sharing" and profile["shareCredentialsVersion"] == 1
    granted = mzj.page.locator("tbody tr", has_text="scjg.legal_entity").first
    granted.get_by_role("link", name=re.compile("的数据提出疑义")).click()
    mzj.check("objection-form")
    mzj.page.get_by_label("记录的统一社会信用代码（uscc）").fill("91350100M000100Y43")
    mzj.page.get_by_label("统一社会信用代码（uscc）", exact=True).check()
    mzj.page.get_by_label("疑义说明").fill("该企业的登记信息有误")
    mzj.page.get_by_role("button", name="提交疑义").click()
    assert "已提交" in mzj.page.get_by_role("status").inner_text()
    mine = mzj.page.locator("tbody tr", has_text="该企业的登记信息有误")
    assert "待答复" in mine.inner_text() and "scjg.legal_entity" in mine.inner_text()  # its own, awaiting answer


def test_sessions_are_guarded(console, clerk) -> None:
    url = console["url"]
    anonymous = httpx.get(f"{url}/console/notices", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/login")

    mzj = clerk()
    mzj.sign_in(console, key=console["key"])
    (cookie,) = [c for c in mzj.context.cookies() if c["name"] == "sharehub_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    jar = {"sharehub_console": cookie["value"]}
    assert httpx.get(f"{url}/console/notices", cookies=jar).status_code == 403  # a consumer: as the API says
    forged = httpx.post(f"{url}/console/extracts", cookies=jar, data={"resource_id": "rsj.insurance_enrolment"})
    assert forged.status_code == 422  # no CSRF token at all
    forged = httpx.post(f"{url}/console/extracts", cookies=jar, data={"resource_id": "x", "csrf": "guess"})
    assert forged.status_code == 403
    page = httpx.get(f"{url}/console/extracts", cookies=jar).text
    (csrf,) = set(re.findall(r'name="csrf" value="([^"]+)"', page))
    refused = httpx.post(
        f"{url}/console/extracts", cookies=jar, data={"resource_id": "gongan.population", "csrf": csrf}
    )  # granted verification and query, not bulk: refused, and audited as the API audits it
    assert refused.status_code == 303 and "error" in refused.headers["location"]
    audited = httpx.get(
        f"{url}/audit",
        params={"action": "bulk", "result": "denied"},
        headers={"Authorization": f"Bearer {console['key']}"},
    ).json()
    assert [e["resource_id"] for e in audited] == ["gongan.population"]

    rsj = clerk()
    rsj.sign_in(console, "demo.rsj")
    jar = {c["name"]: c["value"] for c in rsj.context.cookies()}
    others = httpx.get(f"{url}/console/notices?status=open", cookies=jar).text
    theirs = re.findall(r"/console/notices/(\d+)", httpx.get(f"{url}/console/notices", cookies=jar).text)
    assert theirs and "swj.tax_registration" not in others
    office = clerk()
    office.sign_in(console, "demo.platform")
    office.go("/console/notices")
    listed = set(re.findall(r"/console/notices/(\d+)", office.page.content()))
    foreign = sorted(listed - set(theirs))
    assert foreign  # the platform office sees other departments' notices; rsj must not open them
    assert httpx.get(f"{url}/console/notices/{foreign[0]}", cookies=jar).status_code == 404

    bad = httpx.post(
        f"{url}/console/login",
        data={"username": "demo.rsj", "password": "wrong-password", "login_csrf": "x"},
        cookies={"sharehub_console_login": "x"},
        follow_redirects=False,
    )
    assert bad.status_code == 303 and "error" in bad.headers["location"]
