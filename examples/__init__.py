"""Runnable examples; tests/system/test_examples.py runs them."""
