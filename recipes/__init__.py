"""The shipped recipes: installed as ``deae_aug.recipe_files`` (pyproject.toml maps this folder)."""
