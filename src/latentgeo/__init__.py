"""latentgeo: Riemannian geometry of learned latent spaces in JAX."""

__version__ = "0.1.0"
