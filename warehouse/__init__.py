"""The stores: Delta Lake tables merged by key, each version tagged with the run that wrote it."""
