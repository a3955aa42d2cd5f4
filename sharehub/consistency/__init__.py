"""Cross-department consistency: one datum, one source (一数一源), many checks on one datum (多元校核)."""
