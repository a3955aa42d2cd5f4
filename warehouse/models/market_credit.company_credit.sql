/*
title: 市场信用主题：企业登记 × 纳税信用 × 参保人数 × 公共信用记录
key: [uscc]
sources: [scjg.legal_entity, swj.tax_registration, rsj.insurance_enrolment, fgw.credit_record]
*/
-- One row per registered company: its registration (authoritative), its tax status, credit grade and
-- arrears, how many people it insures, and its public credit record (penalties, commendations, and
-- whether it is on the serious-dishonesty list). Lineage lists every enrolment and credit record used.
WITH insured AS (
    SELECT employer_uscc, count(DISTINCT id_number) AS insured_people, list(DISTINCT _src) AS srcs
    FROM "rsj.insurance_enrolment"
    WHERE employer_uscc IS NOT NULL AND status = '正常参保'
    GROUP BY employer_uscc
), credit AS (
    SELECT subject_uscc,
           count(*) FILTER (WHERE record_type = '行政处罚') AS penalties,
           count(*) FILTER (WHERE record_type = '守信激励') AS commendations,
           bool_or(record_type = '严重失信主体名单') AS seriously_dishonest,
           list(DISTINCT _src) AS srcs
    FROM "fgw.credit_record"
    GROUP BY subject_uscc
)
SELECT
    e.uscc,
    e.name,
    e.status AS registration_status,
    e.established_date,
    e.division_code,
    e.registered_capital,
    t.taxpayer_status,
    t.tax_grade,
    t.arrears,
    coalesce(t.arrears, 0) > 0 AS in_arrears,
    coalesce(i.insured_people, 0) AS insured_people,
    coalesce(c.penalties, 0) AS penalties,
    coalesce(c.commendations, 0) AS commendations,
    coalesce(c.seriously_dishonest, false) AS seriously_dishonest,
    list_concat([e._src, t._src], coalesce(i.srcs, []), coalesce(c.srcs, [])) AS _lineage
FROM "scjg.legal_entity" e
LEFT JOIN "swj.tax_registration" t ON t.uscc = e.uscc
LEFT JOIN insured i ON i.employer_uscc = e.uscc
LEFT JOIN credit c ON c.subject_uscc = e.uscc
