"""The composition root: settings -> objects, the CLI and the scheduled jobs.

The only package that imports every other one.
"""
