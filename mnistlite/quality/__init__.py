"""Data quality: the corruption detector, the weekly data gate built on it, and the noise it is
tested with."""
