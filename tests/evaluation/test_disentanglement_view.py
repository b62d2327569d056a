"""Which latents the disentanglement page traverses, which test image it starts from, and how many
latents its metrics are over."""

import numpy as np

from vizvae.evaluation.disentanglement_view import central_test_row, code_size, inactive_dimensions, traversal_dimensions
from vizvae.models import UGVAE, VAE, UGVAEConfig, VAEConfig


def test_inactive_latents_are_those_at_or_under_the_threshold():
    kl = np.array([0.5, 0.001, 2.0, 0.01])
    order = [2, 0, 3, 1]  # by KL, highest first
    assert inactive_dimensions(order, kl) == [3, 1]
    assert traversal_dimensions(order, kl, show_inactive=False) == [2, 0]
    assert traversal_dimensions(order, kl, show_inactive=True) == order


def test_with_no_active_latent_every_latent_is_traversed():
    kl = np.zeros(3)
    assert traversal_dimensions([0, 1, 2], kl, show_inactive=False) == [0, 1, 2]


def test_the_start_image_is_the_central_ellipse():
    levels = (3, 5, 8, 9, 9)  # shape, scale, rotation, x, y
    codes = np.array([
        [1, 0, 0, 4, 4],  # an ellipse, smallest
        [0, 2, 3, 4, 4],  # a square in the middle
        [1, 2, 7, 4, 4],  # an ellipse in the middle, any rotation: the one
        [1, 2, 0, 0, 8],  # an ellipse in a corner
    ])
    assert central_test_row(codes, levels) == 2
    assert central_test_row(codes[[0, 1, 3]], levels) == 1  # without it: the middle beats the shape


def test_the_code_is_all_of_z_or_a_group_models_local_z():
    vae = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=5, hidden_dims=(8,)))
    assert code_size(vae) == 5
    ugvae = UGVAE(UGVAEConfig(input_shape=(1, 4, 4), latent_dim=3, global_dim=2, clusters=2, hidden_dim=8))
    assert ugvae.latent_dim == 5  # the decoder's input [z, β]
    assert code_size(ugvae) == 3  # the metrics look at z alone: β is shared by a whole group


def test_the_sentence_under_the_beta_chart_says_what_the_scores_do():
    from vizvae.evaluation.disentanglement_view import against_beta_sentence

    # the shipped shapes models' stored scores: MIG peaks at β = 4, informativeness does not move
    sentence = against_beta_sentence([1, 4, 10], {"MIG": [0.156, 0.387, 0.278],
                                                   "DCI informativeness": [0.672, 0.700, 0.681]})
    assert sentence == ("On these models, MIG peaks at β = 4 (0.16, 0.39, 0.28); DCI informativeness is flat "
                        "(0.67–0.70) over β = 1, 4, 10.")
    assert "rises with β (0.10, 0.20, 0.40)" in against_beta_sentence([1, 4, 10], {"MIG": [0.1, 0.2, 0.4]})
    assert "falls as β grows (0.90, 0.70, 0.50)" in against_beta_sentence([1, 4, 10], {"x": [0.9, 0.7, 0.5]})
