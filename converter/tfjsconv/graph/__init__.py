"""TensorFlow graphs (SavedModel, frozen GraphDef, TF Hub, Keras) -> tfjs graph models.

TensorFlow is imported only inside the modules of this package that need it, so
``import tfjsconv.graph`` stays cheap.
"""
