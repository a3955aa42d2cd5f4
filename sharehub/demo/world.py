"""A reproducible synthetic city: residents, companies and what each department holds about them.

The data carries deliberate defects (bad check digits, missing values, duplicate keys, impossible
dates) and deliberate disagreements between departments, so that every gate and check has work to do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from expectations.identifiers import USCC_ALPHABET, org_code_check_digit, resident_id_check_digit, uscc_check_digit

# Real GB/T 2260 county-level codes (Enshi prefecture, Hubei, and the seeds' other cities).
DIVISIONS: dict[str, str] = {
    "422801": "湖北省恩施市",
    "422802": "湖北省利川市",
    "422822": "湖北省建始县",
    "422823": "湖北省巴东县",
    "422825": "湖北省宣恩县",
    "422826": "湖北省咸丰县",
    "422827": "湖北省来凤县",
    "422828": "湖北省鹤峰县",
    "210402": "辽宁省抚顺市新抚区",
    "430405": "湖南省衡阳市珠晖区",
    "442000": "广东省中山市",
    "330106": "浙江省杭州市西湖区",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯健俊帆帅旭宁婷雪琳晨辰欣怡子涵梓轩浩然一诺雨桐佳怡"
ETHNICITIES = ["汉族"] * 8 + ["土家族", "苗族", "侗族", "回族"]
ROADS = ["解放路", "人民路", "建设路", "中山路", "胜利街", "滨江路", "新华街", "和平路", "光明路", "团结路"]
INDUSTRY = ["科技", "商贸", "建筑工程", "农业开发", "餐饮管理", "物流", "文化传媒", "医药", "茶业", "旅游开发"]
SUFFIX = ["有限公司", "有限责任公司", "股份有限公司", "合作社", "个体工商户"]
VARIANT = {"伟": "玮", "芳": "方", "娜": "那", "秀": "琇", "英": "瑛", "敏": "民", "静": "靜", "丽": "麗", "强": "強"}
INSURANCE = ["养老保险", "医疗保险", "失业保险", "工伤保险"]
DOCTORS = ["李医生", "王医生", "张医生", "覃医生", "向医生"]
LAND_USE = ["商服用地", "工矿仓储用地", "住宅用地", "公共管理与公共服务用地", "农用地"]
CREDIT = {
    "守信激励": "纳税信用A级",
    "行政处罚": "未按规定公示年度报告，罚款",
    "严重失信主体名单": "拒不履行法院生效判决",
}
DECIDERS = ["市场监管局", "税务局", "生态环境局", "人民法院", "人社局"]
LICENCES = {
    "食品经营许可证": "JY",
    "建筑业企业资质证书": "JZ",
    "道路运输经营许可证": "YS",
    "排污许可证": "PW",
    "药品经营许可证": "YP",
}
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _variant(name: str) -> str:
    """The same name with one character written differently, as a clerk might have typed it."""
    for i, ch in enumerate(name):
        if ch in VARIANT:
            return name[:i] + VARIANT[ch] + name[i + 1 :]
    return name + "某"


def _bad_check(code: str) -> str:
    """The same code with its check character changed."""
    alt = "0" if code[-1] != "0" else "1"
    return code[:-1] + alt


@dataclass
class World:
    """Every department's rows, as lists of dicts keyed by resource id, plus what was planted."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    planted: dict[str, dict[str, int]] = field(default_factory=dict)
    text_overrides: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    csv_rows: list[dict[str, Any]] = field(default_factory=list)

    def plant(self, resource_id: str, kind: str, n: int = 1) -> None:
        """Count a deliberate defect or disagreement."""
        self.planted.setdefault(resource_id, {}).setdefault(kind, 0)
        self.planted[resource_id][kind] += n


def build_world(persons: int = 100_000, entities: int = 20_000, seed: int = 20261122) -> World:
    """Generate the city: `persons` residents and `entities` companies, with defects and disagreements."""
    rng = random.Random(seed)
    world = World()
    codes = list(DIVISIONS)
    people: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    while len(people) < persons:
        div = rng.choice(codes)
        born = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 32_000))
        seq = f"{rng.randrange(0, 1000):03d}"
        body = f"{div}{born:%Y%m%d}{seq}"
        pid = body + resident_id_check_digit(body)
        if pid in seen_ids:
            continue
        seen_ids.add(pid)
        sex = "男" if int(seq[-1]) % 2 else "女"
        people.append(
            {
                "id_number": pid,
                "name": _name(rng),
                "sex": sex,
                "birth_date": born,
                "ethnicity": rng.choice(ETHNICITIES),
                "division_code": div,
                "address": f"{DIVISIONS[div]}{rng.choice(ROADS)}{rng.randrange(1, 300)}号",
                "phone": f"1{rng.choice('3578')}{rng.randrange(0, 10**9):09d}",
                "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 365)),
            }
        )
    companies: list[dict[str, Any]] = []
    seen_codes: set[str] = set()
    while len(companies) < entities:
        div = rng.choice(codes)
        org = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        org += org_code_check_digit(org)
        body = "91" + div + org
        if any(c not in USCC_ALPHABET for c in body):
            continue
        code = body + uscc_check_digit(body)
        if code in seen_codes:
            continue
        seen_codes.add(code)
        rep = rng.choice(people)
        companies.append(
            {
                "uscc": code,
                "name": f"{DIVISIONS[div][-3:-1]}{rng.choice(SURNAMES)}{rng.choice(GIVEN)}{rng.choice(INDUSTRY)}{rng.choice(SUFFIX)}",
                "legal_rep_name": rep["name"],
                "legal_rep_id": rep["id_number"],
                "reg_address": f"{DIVISIONS[div]}{rng.choice(ROADS)}{rng.randrange(1, 500)}号",
                "division_code": div,
                "status": rng.choices(["存续", "在业", "吊销", "注销"], weights=[70, 20, 4, 6])[0],
                "established_date": date(1995, 1, 1) + timedelta(days=rng.randrange(0, 11_000)),
                "registered_capital": Decimal(rng.randrange(1_000, 100_000_000)) / 100,
                "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 365)),
            }
        )

    world.tables["gongan.population"] = _population(rng, world, people)
    world.tables["scjg.legal_entity"] = _entities(rng, world, companies)
    world.tables["rsj.insurance_enrolment"] = _insurance(rng, world, people, companies)
    world.tables["swj.tax_registration"] = _tax(rng, world, companies)
    world.tables["wjw.health_record"] = _health(rng, world, people)
    world.csv_rows = _dibao(rng, world, people)
    # Drawn last, so the other departments' rows stay what they were before licences were added.
    world.tables["xzsp.e_licence"] = _licences(rng, world, companies)
    world.tables["zrzy.land_parcel"] = _parcels(rng, world, companies)
    world.tables["fgw.credit_record"] = _credit(rng, world, companies)
    return world


def _defects(rng: random.Random, world: World, rid: str, rows: list[dict], key: str, required: str, dated: str) -> None:
    """Plant bad check digits, missing values, duplicate keys and impossible dates, about 0.2% each."""
    n = max(1, len(rows) // 500)
    for row in rng.sample(rows, n):
        row[key] = _bad_check(row[key])
    world.plant(rid, "bad_check_digit", n)
    for row in rng.sample(rows, n):
        row[required] = None
    world.plant(rid, "missing_required", n)
    dupes = [dict(r) for r in rng.sample(rows, max(1, n // 4))]
    rows.extend(dupes)
    world.plant(rid, "duplicate_key_rows", 2 * len(dupes))
    future = [i for i in rng.sample(range(len(rows)), n)]
    for i in future[: n // 2 + 1]:
        rows[i][dated] = date(2090 + rng.randrange(0, 9), 1, 1)
    # Text front-end databases (SQLite) also hold dates that do not exist at all.
    world.text_overrides[rid] = [(i, dated, "2023-02-30") for i in future[n // 2 + 1 :]]
    world.plant(rid, "impossible_date", n)


def _population(rng: random.Random, world: World, people: list[dict]) -> list[dict]:
    rows = [dict(p) for p in people]
    _defects(rng, world, "gongan.population", rows, "id_number", "name", "birth_date")
    return rows


def _entities(rng: random.Random, world: World, companies: list[dict]) -> list[dict]:
    rows = [dict(c) for c in companies]
    _defects(rng, world, "scjg.legal_entity", rows, "uscc", "legal_rep_name", "established_date")
    return rows


def _insurance(rng: random.Random, world: World, people: list[dict], companies: list[dict]) -> list[dict]:
    rows = []
    for p in rng.sample(people, int(len(people) * 0.6)):
        employer = rng.choice(companies)
        for kind in rng.sample(INSURANCE, rng.choice((1, 2, 2, 3))):
            name = p["name"]
            if rng.random() < 0.005:
                name = _variant(name)
                world.plant("rsj.insurance_enrolment", "name_disagrees_with_gongan")
            rows.append(
                {
                    "id_number": p["id_number"],
                    "insurance_type": kind,
                    "name": name,
                    "employer_uscc": employer["uscc"],
                    "start_date": max(p["birth_date"] + timedelta(days=18 * 366), date(2000, 1, 1))
                    + timedelta(days=rng.randrange(0, 3000)),
                    "monthly_base": Decimal(rng.randrange(300_000, 2_500_000)) / 100,
                    "status": rng.choices(["正常参保", "暂停缴费", "终止参保"], weights=[85, 10, 5])[0],
                    "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 200)),
                }
            )
    for r in rows:
        if r["start_date"] > NOW.date():
            r["start_date"] = date(2024, 1, 1)
    _defects(rng, world, "rsj.insurance_enrolment", rows, "id_number", "name", "start_date")
    return rows


def _tax(rng: random.Random, world: World, companies: list[dict]) -> list[dict]:
    rows = []
    for c in rng.sample(companies, int(len(companies) * 0.9)):
        name = c["name"]
        if rng.random() < 0.01:
            name = name.replace("有限公司", "有限责任公司") if "有限公司" in name else name + "（分公司）"
            world.plant("swj.tax_registration", "name_disagrees_with_scjg")
        status = {"注销": "注销", "吊销": "非正常"}.get(c["status"], "正常")
        if c["status"] == "注销" and rng.random() < 0.1:
            status = "正常"
            world.plant("swj.tax_registration", "status_disagrees_with_scjg")
        rows.append(
            {
                "uscc": c["uscc"],
                "name": name,
                "taxpayer_status": status,
                "tax_grade": rng.choices(["A", "B", "M", "C", "D"], weights=[20, 50, 20, 7, 3])[0],
                "arrears": Decimal(rng.choice((0, 0, 0, rng.randrange(100, 10_000_000)))) / 100,
                "registered_at": c["established_date"] + timedelta(days=rng.randrange(0, 60)),
                "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 30)),
            }
        )
    for r in rows:
        if r["registered_at"] > NOW.date():
            r["registered_at"] = NOW.date()
    _defects(rng, world, "swj.tax_registration", rows, "uscc", "name", "registered_at")
    return rows


def _health(rng: random.Random, world: World, people: list[dict]) -> list[dict]:
    rows = []
    for p in rng.sample(people, int(len(people) * 0.8)):
        name, sex = p["name"], p["sex"]
        if rng.random() < 0.005:
            name = _variant(name)
            world.plant("wjw.health_record", "name_disagrees_with_gongan")
        if rng.random() < 0.002:
            sex = "女" if sex == "男" else "男"
            world.plant("wjw.health_record", "sex_disagrees_with_gongan")
        rows.append(
            {
                "id_number": p["id_number"],
                "name": name,
                "sex": sex,
                "birth_date": p["birth_date"],
                "phone": p["phone"] if rng.random() < 0.9 else f"0718-{rng.randrange(1000000, 9999999)}",
                "family_doctor": rng.choice(DOCTORS),
                "last_visit": max(NOW.date() - timedelta(days=rng.randrange(0, 2000)), p["birth_date"]),
                "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 90)),
            }
        )
    _defects(rng, world, "wjw.health_record", rows, "id_number", "name", "last_visit")
    return rows


def _licences(rng: random.Random, world: World, companies: list[dict]) -> list[dict]:
    """Electronic licences of companies still registered: one or two each for about half of them."""
    rows: list[dict[str, Any]] = []
    live = [c for c in companies if c["status"] in ("存续", "在业")]
    for c in rng.sample(live, len(live) // 2):
        for kind in rng.sample(sorted(LICENCES), rng.choice((1, 1, 2))):
            name = c["name"]
            if rng.random() < 0.005:
                name = name.replace("有限公司", "有限责任公司") if "有限公司" in name else name + "（分店）"
                world.plant("xzsp.e_licence", "name_disagrees_with_scjg")
            issued = min(c["established_date"] + timedelta(days=rng.randrange(0, 4000)), NOW.date())
            valid_until = issued + timedelta(days=5 * 365)
            rows.append(
                {
                    "licence_no": f"{LICENCES[kind]}{c['division_code']}{len(rows) + 1:08d}",
                    "licence_type": kind,
                    "holder_uscc": c["uscc"],
                    "holder_name": name,
                    "issued_on": issued,
                    "valid_until": valid_until,
                    "status": "过期" if valid_until < NOW.date() else rng.choices(["有效", "注销"], weights=[97, 3])[0],
                    "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 30)),
                }
            )
    _defects(rng, world, "xzsp.e_licence", rows, "holder_uscc", "holder_name", "issued_on")
    return rows


def _parcels(rng: random.Random, world: World, companies: list[dict]) -> list[dict]:
    """Land parcels held by companies, in each company's own division."""
    rows: list[dict[str, Any]] = []
    for i in range(max(20, len(companies) // 2)):
        holder = rng.choice(companies)
        div = holder["division_code"]
        rows.append(
            {
                "parcel_code": f"{div}{rng.randrange(1, 20):03d}{rng.randrange(1, 50):03d}GB{i + 1:05d}",
                "division_code": div,
                "land_use": rng.choice(LAND_USE),
                "area_m2": Decimal(rng.randrange(5_000, 5_000_000)) / 100,
                "holder_uscc": holder["uscc"],
                "registered_on": date(2000, 1, 1) + timedelta(days=rng.randrange(0, 9000)),
                "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 60)),
            }
        )
    _defects(rng, world, "zrzy.land_parcel", rows, "holder_uscc", "land_use", "registered_on")
    return rows


def _credit(rng: random.Random, world: World, companies: list[dict]) -> list[dict]:
    """Public credit records of about a fifth of the companies, under the name the deciding body wrote."""
    rows: list[dict[str, Any]] = []
    for c in rng.sample(companies, len(companies) // 5):
        kind = rng.choices(sorted(CREDIT), weights=[5, 3, 1])[0]
        name = c["name"]
        if rng.random() < 0.005:
            name = _variant(name)
            world.plant("fgw.credit_record", "name_disagrees_with_scjg")
        rows.append(
            {
                "record_no": f"XY{NOW.year}{len(rows) + 1:06d}",
                "subject_uscc": c["uscc"],
                "subject_name": name,
                "record_type": kind,
                "decided_by": rng.choice(DECIDERS),
                "decided_on": min(c["established_date"] + timedelta(days=rng.randrange(30, 6000)), NOW.date()),
                "detail": CREDIT[kind],
                "updated_at": NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 200)),
            }
        )
    _defects(rng, world, "fgw.credit_record", rows, "subject_uscc", "subject_name", "decided_on")
    return rows


def _as_written(rng: random.Random, day: date) -> str:
    """A date as an offline spreadsheet holds it: in whichever of the usual forms its clerk typed."""
    forms = (f"{day:%Y-%m-%d}", f"{day:%Y/%m/%d}", f"{day.year}年{day.month}月{day.day}日", f"{day:%Y%m%d}")
    return rng.choice(forms)


def _dibao(rng: random.Random, world: World, people: list[dict]) -> list[dict]:
    rows = []
    for p in rng.sample(people, max(10, len(people) // 100)):
        rows.append(
            {
                "身份证号": p["id_number"],
                "姓名": p["name"],
                "区划代码": p["division_code"],
                "月保障金": f"{rng.randrange(30000, 90000) / 100:.2f}",
                "起始日期": _as_written(
                    rng, max(date(2018, 1, 1) + timedelta(days=rng.randrange(0, 2500)), p["birth_date"])
                ),
            }
        )
    bad = rng.sample(rows, max(1, len(rows) // 100))
    for r in bad:
        r["身份证号"] = _bad_check(r["身份证号"])
    world.plant("mzj.subsistence_allowance", "bad_check_digit", len(bad))
    return rows
