"""The subscriber page and the operator portal: plain HTML, CSS and JavaScript files.

A package (not just a folder) so `importlib.resources` finds the files in any install;
registry/api/pages.py serves them.
"""
