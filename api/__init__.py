"""The serving API (FastAPI). Routes only wire; access checks and logic live in `sharehub`."""
