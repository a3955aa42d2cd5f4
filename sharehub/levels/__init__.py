"""Requests that cross levels go up through the platform of their own level (MISSION 14; Zhejiang 5 and 14;
Zhongshan 20).

A city or county platform is a consumer of its upper-level (province or city) platform, which has
issued its platform office an API key (`SHAREHUB_UPSTREAM_URL`, `SHAREHUB_UPSTREAM_KEY`). A department
here never calls the upper level itself:

1. A consumer files a request for an upper-level resource (`POST /upstream/requests`), checked at once
   against the upper level's catalogue: the resource, its fields, its serving modes, and a not-shared
   resource refused with its legal basis. This platform office is asked, with a notice and the
   profile's `application_review` working days, to forward or decline it (Zhongshan 20: the platform of
   the same level collects the departments' needs and applies upward).
2. Forwarded, it becomes the platform office's own application upstairs, its purpose naming the
   department and the application that asked. The upper level's own clocks run from there. `sync`
   (CLI, API, and the `sharehub.upstream_sync` DAG) follows each forwarded request to its outcome:
   granted, refused with reasons, or a grant that was revoked or ran out; the department is told of
   each.
3. Under a granted request, the consumer calls `POST /upstream/verify/{id}`, `GET /upstream/query/{id}`
   and `POST /upstream/bulk/{id}` here; this platform checks that request (its fields and modes, its
   validity) and relays the call with its own key, naming the upper-level grant behind the request
   (`X-Sharehub-Grant`), so that upstairs only that grant counts: its fields, its modes, and its
   revocation at once, though the platform office holds grants for other departments too. The answer
   is cut back here as well, in case the upper level answered more: a query returns only the request's
   fields, a verification answers `found` only to a consumer granted query, and an extract with any
   other column is refused. An extract's short-lived download link is the upper level's; its issuance
   and expiry are audited here and there.

4. A requester that disagrees with the upper level's refusal contests it (`POST /upstream/requests/{id}/
   contest`; Lichuan 25): the platform office's application upstairs is contested there at once, with
   the department's name and reasons (the office had endorsed the request by forwarding it, and is
   told). `sync` brings the outcome down: granted (on the fields and modes the upper level's provider
   agreed, which the request here narrows to), the refusal upheld, or referred to the government
   department that coordinates.

Every step and every relayed call is written to this platform's audit chain; the upper level audits
the same calls under the platform office's key. The key is never logged.
"""
