"""A tiny model for `clipper serve examples/serve/model.py --input-type doubles --reload`.

`predict` gets a batch (a list of inputs, each a list of floats) and returns one output per
input. Edit it while `--reload` runs (say, return the mean) and save: the next version
answers once it is ready; the one before keeps answering until then.
"""


def predict(inputs: list[list[float]]) -> list[float]:
    """The sum of each input."""
    return [sum(features) for features in inputs]
