"""sharehub."""
