"""The metadata database: catalogue versions, runs, watermarks, quality results and quarantine keys."""
