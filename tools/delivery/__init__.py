"""Course delivery: run the notebooks, and build the student edition, the slides and the site.

These tools live in the repository, not in the installed ``condgen_helpers`` package: they need
nbformat, nbclient and nbconvert, and they work on the checkout's ``notebooks/``. Run them from the
repository root as ``python -m tools.delivery COMMAND`` (``--help`` lists the commands).
"""
