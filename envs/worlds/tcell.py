"""Placeholder, replaced by the T-cell world."""


def tcell_world():
    raise NotImplementedError
