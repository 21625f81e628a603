"""Tests of the hippo_format package (the on-disk format of hippogym memories)."""
