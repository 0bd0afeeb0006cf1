"""qselax: quantum neuron selection in JAX."""

__version__ = "0.1.0"
