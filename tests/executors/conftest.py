"""Ray reads its settings when it is first imported: the loopback cluster's (tests/support/ray_cluster.py) must
be in place before any test module here imports parex's Ray executor."""

import tests.support.ray_cluster  # noqa: F401
