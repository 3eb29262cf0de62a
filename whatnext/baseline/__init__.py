"""The data-independent baseline every run carries: logistic regression on small grey frames.

It is member-like (it writes probability caches the ensemble and the report read like any member's)
but never stacked; members that do not beat it are flagged. scikit-learn is imported here only.
"""
