"""Pants 2.17 plugin: a ``tfjs_model`` target whose sources are converted by codegen."""
