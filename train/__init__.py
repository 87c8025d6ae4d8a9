"""Training package: corpora, training and cross-validation for MGCMA."""
