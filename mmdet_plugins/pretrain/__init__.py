"""Backbone pretraining for the mini benchmark (see fashion_mnist_backbone)."""
