"""ganplify: how many truth-sampled events is a generative model worth?

A reproduction and extension of "GANplifying Event Samples" (Butter, Diefenbacher, Kasieczka,
Nachman, Plehn). See README.md for the study workflow; the modules are

targets       the truth families (Gaussian and Student-t shells), exact CDFs, transforms
quantiles     exact quantile binnings, the quantile MSE, N_equiv and amplification
baselines     the 5-parameter maximum-likelihood fit of the camel back
generators    every generator behind one interface, and their registry
evaluation    the MSE of generated events at a grid of event counts
amplification aggregation into the study's tables, with bootstrap intervals
study         config -> jobs, parameter hashes and paths
config        loading and validating a study config
results       the results-folder contract: atomic writes, manifest, verification
plots         the figures
"""

from importlib import metadata

try:
    __version__ = metadata.version("ganplify")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
