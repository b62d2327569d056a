"""Inference: HMC, SKSD, importance sampling, Gibbs-style imputation, acquisition, gaps."""
