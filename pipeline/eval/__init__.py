"""Reproducible evaluation of the live pipeline: ``reid-stream-eval`` (named synthetic sequences, seeds, scores).

See :mod:`reidstream.pipeline.eval.suite`.
"""

from reidstream.pipeline.eval.suite import SEQUENCES, EvalError, commands, evaluate, format_table, main, parts

__all__ = ["SEQUENCES", "EvalError", "commands", "evaluate", "format_table", "main", "parts"]
