"""genqueue."""
