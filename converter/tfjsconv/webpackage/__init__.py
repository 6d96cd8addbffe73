"""Web release packages: a converted model as an npm package (``tfjs_web_package``)."""

from tfjsconv.webpackage.package import WebPackage, build_web_package

__all__ = ["WebPackage", "build_web_package"]
