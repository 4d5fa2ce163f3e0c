"""Training side: networks (Keras 3), datasets and the synthetic renderer, training, metrics.

Needs the `train` extra (TensorFlow, Keras). Pure numpy pieces shared with the app (encode/decode,
geometry, the `Hand` type) live in the runtime package `handpose` and are imported from there.
"""
