"""ganplify: how many truth-sampled events is a generative model worth?

A reproduction and extension of "GANplifying Event Samples" (Butter, Diefenbacher, Kasieczka,
Nachman, Plehn). See README.md for the study workflow. The subpackages:

truth       the truth families and their registry
metrics     exact quantile binnings, the quantile MSE, evaluation at event counts
generators  every generator behind one interface, and the registry; neural/ holds the core the
            GAN and the density models share
study       config and schema, the plan of jobs, a replica's random inputs, the job bodies
results     the results folder: atomic I/O, manifest and verification, provenance, merge, status
analysis    amplification tables with intervals, the fit's uncertainty
figures     the figures and their registry
bench       `ganplify bench`
"""

from importlib import metadata

try:
    __version__ = metadata.version("ganplify")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
