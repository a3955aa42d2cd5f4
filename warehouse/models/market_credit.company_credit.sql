/*
title: 市场信用主题：企业登记 × 纳税信用 × 参保人数
key: [uscc]
sources: [scjg.legal_entity, swj.tax_registration, rsj.insurance_enrolment]
*/
-- One row per registered company: its registration (authoritative), its tax status, credit grade and
-- arrears, and how many people it insures. Lineage of the head count lists every enrolment version used.
WITH insured AS (
    SELECT employer_uscc, count(DISTINCT id_number) AS insured_people, list(DISTINCT _src) AS srcs
    FROM "rsj.insurance_enrolment"
    WHERE employer_uscc IS NOT NULL AND status = '正常参保'
    GROUP BY employer_uscc
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
    list_concat([e._src, t._src], coalesce(i.srcs, [])) AS _lineage
FROM "scjg.legal_entity" e
LEFT JOIN "swj.tax_registration" t ON t.uscc = e.uscc
LEFT JOIN insured i ON i.employer_uscc = e.uscc
