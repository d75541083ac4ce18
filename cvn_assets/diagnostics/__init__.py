"""Diagnostics: audits of a trained cell (a crypto x fold, and each model of it) on its captured fold.

`registry.py` declares what each diagnostic consumes; `verdicts.py` is what a diagnostic finds and how a
cell's audit reads as a whole; `audits/` holds the in-tree diagnostics, one file each."""
