"""The density models beyond the paper: a masked autoregressive spline flow and conditional
flow matching, trained as batched ensembles of replicas.
"""
