from openlines.kit.runtime import serve

from .app import build_service

serve(build_service)
