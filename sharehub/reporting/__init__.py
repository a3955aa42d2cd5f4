"""What the platform office reports: statistics, monthly scores and bulletins, and freshness."""
