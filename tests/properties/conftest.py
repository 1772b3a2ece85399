"""Hypothesis profiles for the property tests.

``ci`` (the default) keeps the suite quick; ``HYPOTHESIS_PROFILE=long`` runs many more
examples per property (the numbers in the issue's closing note)::

    HYPOTHESIS_PROFILE=long scripts/test tests/properties --timeout=0 --hypothesis-show-statistics

(``--timeout=0``: a long run of one property outlasts the suite's 120 s per test.)

Examples are not stored between runs (no ``.hypothesis`` folder in the tree); a failure
prints the example and the seed to reproduce it with (``--hypothesis-seed``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# One client, worker or store serves all the examples of a property (a fixture per test).
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
           HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("ci", max_examples=60, deadline=None, database=None,
                          suppress_health_check=_SHARED, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None, database=None,
                          suppress_health_check=_SHARED, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
