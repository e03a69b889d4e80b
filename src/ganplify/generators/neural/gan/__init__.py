"""The paper's GAN: its networks, its training protocol and the CUDA-graph training step."""
