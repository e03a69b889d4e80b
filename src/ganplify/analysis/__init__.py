"""From per-replica MSE tables to the study's answers: amplification with intervals, and the
fit's uncertainty decomposition.
"""
