from openlines.kit.runtime import serve

from .app import build_runtime

serve(build_runtime)
