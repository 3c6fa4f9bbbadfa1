"""Small models that ship with Clipper, for tests, examples and benchmarks: they import only
`clipper.core` (and their framework), and nothing in the server imports them.

`char_lm`: a tiny character-level language model in PyTorch (a GRU; fixed random weights
from a seed, or trained in seconds) that streams generations and embeds texts.
"""
