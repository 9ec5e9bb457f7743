"""Tracewise: learn PyTorch patterns by tracing real training runs."""
