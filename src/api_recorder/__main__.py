"""``python -m api_recorder``: the same command as ``api-recorder``."""

from .cli import main

main()
