"""What consumers get: the key-indexed serving copies, verification and query answers, bulk
extracts, and the masking of each field by its classification."""
