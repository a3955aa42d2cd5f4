"""The pipeline stages of one run: extract, gate, promote. Each takes ids, never rows."""
