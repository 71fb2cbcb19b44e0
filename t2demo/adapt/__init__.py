"""Adaptation at inference time: the first-pass strategies (registry), the few-shot search (cem)
and the two passes behind one object (adapter.Adapter)."""
