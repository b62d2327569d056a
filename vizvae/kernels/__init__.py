"""Pure tensor math that knows nothing about models: the HMC kernel (``hmc``), SKSD and the
losses that tune HMC (``stein``), and importance-weighted estimators (``importance``)."""
