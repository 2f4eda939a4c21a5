"""Works around CPython gh-106905 in hypothesis's lambda descriptions.

Loaded by a .pth file in schemathesis's virtual environment (see
ops/fetch-schemathesis.sh). CPython 3.11 before 3.11.8 may raise
SystemError ("AST constructor recursion depth mismatch") when ast.parse
runs deep in a recursion. hypothesis parses source code only to describe a
lambda in its reports; this answers "<unknown>" then, which is what
hypothesis itself answers when the source cannot be read.
"""

import sys

if sys.version_info < (3, 11, 8):
    try:
        from hypothesis.internal import lambda_sources
    except ImportError:  # not installed yet
        lambda_sources = None

    if lambda_sources is not None:
        _describe = lambda_sources._lambda_description

        def _lambda_description(f, *args, **kwargs):
            try:
                return _describe(f, *args, **kwargs)
            except SystemError:
                return "lambda *args, **kwargs: <unknown>"

        lambda_sources._lambda_description = _lambda_description
