"""Graph fixtures shared with the other graph tests."""

from graph_fixtures import link_task, node_task, small_config  # noqa: F401
