"""Tests against a real single-node SLURM cluster (see cluster.sh)."""
