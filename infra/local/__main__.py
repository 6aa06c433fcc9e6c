"""`python -m infra.local up|down|status`: works without installing the package."""

from .cli import main

main()
