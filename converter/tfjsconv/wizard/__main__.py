"""``python -m tfjsconv.wizard``: the same as ``tensorflowjs_wizard``."""

from tfjsconv.wizard.main import console_main

console_main()
