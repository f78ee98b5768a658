"""The terms of the (weighted) negative ELBO, per example."""

from typing import Literal

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

Likelihood = Literal["gaussian", "bernoulli"]


def kl_to_standard_normal(
    mean: Float[Array, " d"], log_var: Float[Array, " d"]
) -> Float[Array, ""]:
    r"""$\mathrm{KL}(N(\mu, \operatorname{diag} e^{v}) \,\|\, N(0, I))$."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1 - log_var)


def log_likelihood(
    x: Float[Array, " D"], output: Float[Array, " D"], likelihood: Likelihood
) -> Float[Array, ""]:
    """`log p(x | z)` up to constants: unit-variance Gaussian or Bernoulli(logits)."""
    if likelihood == "gaussian":
        return -0.5 * jnp.sum((x - output) ** 2)
    return jnp.sum(x * output - jax.nn.softplus(output))


def sample_latent(
    mean: Float[Array, " d"], log_var: Float[Array, " d"], key: PRNGKeyArray
) -> Float[Array, " d"]:
    r"""One reparametrised sample $z = \mu + e^{v/2} \varepsilon$,
    $\varepsilon \sim N(0, I)$."""
    return mean + jnp.exp(0.5 * log_var) * jr.normal(key, mean.shape, mean.dtype)
