"""Errors that the CLI maps to exit codes: bad input → 1, solver failure or infeasible → 3."""


class GridflexError(Exception):
    """Base of every error gridflex reports to the user as one line."""

    exit_code = 1


class InputError(GridflexError, ValueError):
    """Bad input: a file, field or row that cannot be used (exit 1)."""


class SolverError(GridflexError):
    """The optimizer failed (exit 3)."""

    exit_code = 3


class InfeasibleError(SolverError):
    """No assignment satisfies the limits (exit 3); the message names the conflicting limits."""
