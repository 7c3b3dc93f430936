"""Generators for demonstrations, tests and benchmarks, kept apart from the domain: the sample inbox of the
demo (:mod:`kepu.devtools.sample`) and the scale inbox of the throughput figures (:mod:`kepu.devtools.scale`).

Nothing of the product imports this package except the command line, which offers ``kepu sample``; the
layering test (``tests/unit/test_layering.py``) keeps it so.
"""
