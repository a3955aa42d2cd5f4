"""Platforms at two levels: requests, relayed calls, objections and contests that cross to the upper level."""
