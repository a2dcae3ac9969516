"""The template layer: `apply.py` makes a copy of this project yours (make init, Copier)."""
