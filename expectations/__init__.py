"""Quality rules: national identifier checks and Great Expectations suites built from the catalogue."""
