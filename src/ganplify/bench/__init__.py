"""`ganplify bench`: the cost of a training step, plain modules against batched ensembles."""
