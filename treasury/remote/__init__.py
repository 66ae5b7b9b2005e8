"""The library and CLI as clients of a `treasury serve` (or any Safe Transaction Service)."""
