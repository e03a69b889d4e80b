"""What every neural generator shares: device choice, stacked replica layers, the training
result and its signal stop, weight and loss files, and sampling of trained replicas; the
GAN (`gan/`) and the density models (`flows/`) build on it.
"""
