"""Errors a user can cause and fix: the CLI prints them on one line and exits with status 2."""


class UserError(ValueError):
    """Bad input from the user (recipe, data, checkpoint); the message says what to change."""


class RecipeError(UserError):
    """An invalid recipe key or value."""


class DataError(UserError):
    """A missing, unreadable or inconsistent image, manifest row or column."""
