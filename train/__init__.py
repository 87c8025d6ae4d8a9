"""Training package: corpora, training, cross-validation and benchmarks for MGCMA."""
