"""Analysis of a results store: pure functions over Parquet tables (no torch, no ray)."""
