"""Video data: dataset registry, synthetic datasets, manifests, decoding, clip sampling, transforms."""
