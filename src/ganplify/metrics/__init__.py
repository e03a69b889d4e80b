"""How a generated sample is scored: exact quantile binnings, the quantile MSE, and its
evaluation at a grid of event counts.
"""
