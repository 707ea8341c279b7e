"""Attempts on a Ray cluster (the optional `ray` extra): driver.py submits and streams, node.py runs an attempt
on its node, bundle.py moves commits as git bundles, watchdog.py ends an agent whose worker was killed."""
