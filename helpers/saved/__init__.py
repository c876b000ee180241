"""The code the chapters teach, generated from their notebooks' cells tagged `save` (scripts/save_helpers.py).

A saved module that uses Keras imports it at the top, as its notebook does after helpers.quiet_tensorflow(); the
same defaults are set here, so that importing one prints no TensorFlow start-up log and picks the TensorFlow backend.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
