/*
title: 社会保障主题：参保人员（人口 × 参保 × 参保单位 × 低保）
key: [id_number, insurance_type]
sources: [rsj.insurance_enrolment, gongan.population, scjg.legal_entity, mzj.subsistence_allowance]
*/
-- One row per enrolment. The person's name, sex, birth date and division come from the population
-- store (authoritative); the employer's name and status from the legal-entity store.
SELECT
    r.id_number,
    r.insurance_type,
    coalesce(p.name, r.name) AS name,
    p.sex,
    p.birth_date,
    p.division_code,
    r.status AS insurance_status,
    r.start_date AS insured_since,
    r.monthly_base,
    r.employer_uscc,
    e.name AS employer_name,
    e.status AS employer_status,
    m.id_number IS NOT NULL AS receives_subsistence_allowance,
    p.id_number IS NULL AS missing_in_population,
    [r._src, p._src, e._src, m._src] AS _lineage
FROM "rsj.insurance_enrolment" r
LEFT JOIN "gongan.population" p ON p.id_number = r.id_number
LEFT JOIN "scjg.legal_entity" e ON e.uscc = r.employer_uscc
LEFT JOIN "mzj.subsistence_allowance" m ON m.id_number = r.id_number
