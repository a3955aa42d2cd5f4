"""Who may have what: callers and their keys, applications and grants, contests of refusals,
objections, open-data requests, revocation and the shared rate limit."""
